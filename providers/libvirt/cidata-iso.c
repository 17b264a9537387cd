/* In-memory cidata ISO through libisofs. libisofs generates the image on its
 * own writer thread and hands it out through a burn_source, which we drain
 * into one buffer. */
#include "cidata-iso.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define LIBISOFS_WITHOUT_LIBBURN 1
/* The header declares a few functions as f() instead of f(void). */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#include <libisofs.h>
#pragma GCC diagnostic pop

#include "cleanup.h"
#include "xalloc.h"

#define ISO_BLOCK 2048
/* A seed holds a cloud-config document; anything near this is a mistake. */
#define CIDATA_MAX_FILE (64u << 20)

static pthread_once_t iso_once = PTHREAD_ONCE_INIT;
static int iso_init_status;

static void iso_init_once(void)
{
    /* bit0: leave the process locale alone. Messages are returned, not printed. */
    iso_init_status = iso_init_with_flag(1);
    if (iso_init_status >= 0)
        iso_set_msgs_severities("NEVER", "NEVER", "libisofs");
}

static bool name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > 64 || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '.' ||
              *p == '_' || *p == '-'))
            return false;
    return true;
}

static int iso_fail(caa_error **err, int code, const char *what)
{
    return caa_error_set(err, -EIO, "cidata ISO: %s: %s", what, iso_error_to_msg(code));
}

static void image_unrefp(IsoImage **img)
{
    if (*img)
        iso_image_unref(*img);
}

static void opts_freep(IsoWriteOpts **o)
{
    if (*o)
        iso_write_opts_free(*o);
}

static int add_files(IsoImage *image, const caa_cidata_file *files, size_t n_files, caa_error **err)
{
    IsoDir *root = iso_image_get_root(image);
    for (size_t i = 0; i < n_files; i++) {
        if (!name_ok(files[i].name))
            return caa_error_set(err, -EINVAL, "cidata ISO: invalid file name \"%s\"",
                                 files[i].name ? files[i].name : "(null)");
        if (files[i].len > CIDATA_MAX_FILE || (files[i].len && !files[i].data))
            return caa_error_set(err, -EINVAL, "cidata ISO: file %s is too large", files[i].name);
        /* The stream takes the buffer and free()s it; it must not be empty for malloc(0) reasons. */
        unsigned char *copy = xmalloc(files[i].len ? files[i].len : 1);
        if (files[i].len)
            memcpy(copy, files[i].data, files[i].len);
        IsoStream *stream = NULL;
        int r = iso_memory_stream_new(copy, files[i].len, &stream);
        if (r < 0) {
            free(copy);
            return iso_fail(err, r, "memory stream");
        }
        IsoFile *file = NULL;
        /* On success the new file node owns the stream reference. */
        r = iso_image_add_new_file(image, root, files[i].name, stream, &file);
        if (r < 0) {
            iso_stream_unref(stream);
            return iso_fail(err, r, files[i].name);
        }
        iso_node_set_permissions((IsoNode *)file, S_IRUSR | S_IWUSR | S_IRGRP | S_IROTH);
    }
    return 0;
}

static int drain(struct burn_source *src, uint8_t **ret_image, size_t *ret_len, caa_error **err)
{
    size_t cap = 64 * ISO_BLOCK, len = 0;
    _cleanup_free_ uint8_t *buf = xmalloc(cap);
    for (;;) {
        if (cap - len < ISO_BLOCK) {
            cap *= 2;
            buf = xrealloc(buf, cap);
        }
        int n = src->read_xt(src, buf + len, ISO_BLOCK);
        if (n == 0)
            break;
        if (n < 0)
            return caa_error_set(err, -EIO, "cidata ISO: image generation failed");
        len += (size_t)n;
    }
    if (len == 0)
        return caa_error_set(err, -EIO, "cidata ISO: empty image");
    *ret_image = TAKE_PTR(buf);
    *ret_len = len;
    return 0;
}

int caa_cidata_iso_build(const char *volume_id, const caa_cidata_file *files, size_t n_files,
                         uint8_t **ret_image, size_t *ret_len, caa_error **err)
{
    pthread_once(&iso_once, iso_init_once);
    if (iso_init_status < 0)
        return iso_fail(err, iso_init_status, "initialising libisofs");
    if (!volume_id)
        volume_id = "cidata";
    if (!*volume_id || strlen(volume_id) > 32)
        return caa_error_set(err, -EINVAL, "cidata ISO: volume id must have 1 to 32 characters");

    _cleanup_(image_unrefp) IsoImage *image = NULL;
    int r = iso_image_new(volume_id, &image);
    if (r < 0)
        return iso_fail(err, r, "new image");
    iso_image_set_volume_id(image, volume_id);
    if ((r = add_files(image, files, n_files, err)) < 0)
        return r;

    _cleanup_(opts_freep) IsoWriteOpts *opts = NULL;
    /* Profile 0 (plain ISO 9660 level 1) plus Rock Ridge for exact names and
     * Joliet for readers without Rock Ridge. */
    if ((r = iso_write_opts_new(&opts, 0)) < 0)
        return iso_fail(err, r, "write options");
    iso_write_opts_set_rockridge(opts, 1);
    iso_write_opts_set_joliet(opts, 1);
    iso_write_opts_set_always_gmt(opts, 1);
    /* Keep the lower-case label: ISO 9660 d-characters would make it "CIDATA". */
    iso_write_opts_set_relaxed_vol_atts(opts, 1);
    /* Joliet names exactly as given: no ";1" version, no forced dot. */
    iso_write_opts_set_omit_version_numbers(opts, 2);
    iso_write_opts_set_no_force_dots(opts, 2);

    struct burn_source *src = NULL;
    if ((r = iso_image_create_burn_source(image, opts, &src)) < 0)
        return iso_fail(err, r, "starting image generation");
    r = drain(src, ret_image, ret_len, err);
    if (r < 0 && src->cancel)
        src->cancel(src);
    src->free_data(src);
    free(src);
    return r;
}

int caa_cidata_iso_build_seed(const char *hostname, const char *user_data, size_t user_data_len,
                              uint8_t **ret_image, size_t *ret_len, caa_error **err)
{
    size_t n = hostname ? strlen(hostname) : 0;
    if (n == 0 || n > 63 || strspn(hostname, "abcdefghijklmnopqrstuvwxyz0123456789-") != n)
        return caa_error_set(err, -EINVAL, "cidata ISO: invalid host name");
    /* A fixed one-line YAML document: the validated name needs no quoting. */
    _cleanup_free_ char *meta = xasprintf("local-hostname: %s\n", hostname);
    const caa_cidata_file files[] = {
        {"user-data", user_data, user_data ? user_data_len : 0},
        {"meta-data", meta, strlen(meta)},
        {"vendor-data", "", 0},
    };
    return caa_cidata_iso_build("cidata", files, CAA_ARRAY_SIZE(files), ret_image, ret_len, err);
}
