#include "provision.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bootdata-paths.h"
#include "cloud-config.h"
#include "fs.h"
#include "initdata.h"
#include "xalloc.h"

/* Modes: files holding secrets (the TLS server key in apf.json, registry
 * credentials in auth.json) are readable by root only; the rest is world-
 * readable as upstream writes it. Every consumer runs as root. */
#define MODE_SECRET 0600
#define MODE_PUBLIC 0644

/* The allow-list, in write order. aa.toml comes last: attestation-agent.path
 * starts the guest components as soon as it appears, so everything else must
 * already be in place. `direct`: may come from user-data (upstream's
 * WriteFilesList); `from_initdata`: produced by expanding initdata. */
static const struct allowed {
    const char *name;
    mode_t mode;
    bool direct;
    bool from_initdata;
} allowed[] = {
    {CAA_BOOTDATA_APF_JSON, MODE_SECRET, true, false},
    {CAA_BOOTDATA_AUTH_JSON, MODE_SECRET, true, false},
    {CAA_BOOTDATA_INITDATA, MODE_PUBLIC, true, false},
    {CAA_BOOTDATA_CDH_TOML, MODE_PUBLIC, true, true},
    {CAA_BOOTDATA_POLICY_REGO, MODE_PUBLIC, false, true},
    {CAA_BOOTDATA_SCRATCH_MARKER, MODE_PUBLIC, true, false},
    {CAA_BOOTDATA_INITDATA_DIGEST, MODE_PUBLIC, false, false},
    {CAA_BOOTDATA_AA_TOML, MODE_PUBLIC, true, true},
};

void caa_pud_plan_free(caa_pud_plan *plan)
{
    if (!plan)
        return;
    for (size_t i = 0; i < plan->n_files; i++)
        free(plan->files[i].content);
    for (size_t i = 0; i < plan->n_notes; i++)
        free(plan->notes[i]);
    free(plan->notes);
    free(plan);
}

const caa_pud_file *caa_pud_plan_find(const caa_pud_plan *plan, const char *name)
{
    for (size_t i = 0; i < plan->n_files; i++)
        if (strcmp(plan->files[i].name, name) == 0)
            return &plan->files[i];
    return NULL;
}

/* A printable, bounded rendering of a path from user-data for messages. */
static void safe_path(const char *s, char *buf, size_t size)
{
    size_t j = 0;
    for (; *s && j + 4 < size; s++)
        buf[j++] = ((unsigned char)*s >= 0x20 && (unsigned char)*s < 0x7f) ? *s : '?';
    if (*s) {
        memcpy(buf + j, "...", 3);
        j += 3;
    }
    buf[j] = '\0';
}

static void note(caa_pud_plan *plan, const char *what, const char *path, const char *why)
{
    char safe[80];
    safe_path(path, safe, sizeof(safe));
    plan->notes = xrealloc(plan->notes, (plan->n_notes + 1) * sizeof(*plan->notes));
    plan->notes[plan->n_notes++] = xasprintf("%s '%s' %s", what, safe, why);
}

/* Index into allowed[] for an exact "/run/peerpod/<name>" path that
 * user-data may carry, or -1. The comparison is on the whole string, so
 * "..", "//" and relative paths never match. */
static int allowed_index(const char *path)
{
    static const char prefix[] = CAA_PEERPOD_DIR "/";
    if (strncmp(path, prefix, sizeof(prefix) - 1) != 0)
        return -1;
    const char *name = path + sizeof(prefix) - 1;
    for (size_t i = 0; i < CAA_ARRAY_SIZE(allowed); i++)
        if (allowed[i].direct && strcmp(name, allowed[i].name) == 0)
            return (int)i;
    return -1;
}

static int index_of(const char *name)
{
    for (size_t i = 0; i < CAA_ARRAY_SIZE(allowed); i++)
        if (strcmp(name, allowed[i].name) == 0)
            return (int)i;
    return -1;
}

typedef struct slot {
    char *content;
    size_t len;
    bool set;
} slot;

/* Sets or replaces (a later duplicate wins, as upstream writes in order). */
static void slot_set(slot *s, const char *content, size_t len)
{
    free(s->content);
    s->content = xmalloc(len + 1);
    memcpy(s->content, content, len);
    s->content[len] = '\0';
    s->len = len;
    s->set = true;
}

static int expand_initdata(slot *slots, caa_pud_plan *plan, caa_error **err)
{
    slot *encoded = &slots[index_of(CAA_BOOTDATA_INITDATA)];
    _cleanup_free_ char *toml = NULL;
    size_t toml_len = 0;
    const char *doc = caa_initdata_default_toml;
    size_t doc_len = strlen(caa_initdata_default_toml);
    bool given = encoded->set;
    if (given) {
        if (caa_initdata_decode(encoded->content, encoded->len, &toml, &toml_len, err) < 0)
            return caa_error_prefix(err, "user-data file %s", CAA_BOOTDATA_INITDATA);
        doc = toml;
        doc_len = toml_len;
    }
    _cleanup_initdata_ caa_initdata *d = NULL;
    if (caa_initdata_parse(doc, doc_len, &d, err) < 0)
        return caa_error_prefix(err, "user-data file %s", CAA_BOOTDATA_INITDATA);

    for (size_t k = 0; k < d->n_data; k++) {
        int i = index_of(d->data[k].name);
        if (i < 0 || !allowed[i].from_initdata) {
            note(plan, "initdata entry", d->data[k].name, "is not allowed, skipped");
            continue;
        }
        /* As upstream: initdata's files are written after the directly
         * given ones and replace them. Without initdata a directly given
         * file wins over the default document's empty aa.toml (older
         * adaptors sent aa.toml/cdh.toml that way). */
        if (slots[i].set) {
            if (!given)
                continue;
            note(plan, "user-data file", allowed[i].name, "is replaced by the initdata entry");
        }
        slot_set(&slots[i], d->data[k].value, d->data[k].value_len);
    }
    if (!given) {
        /* Upstream's program then leaves an initdata file behind too. */
        _cleanup_free_ char *enc = caa_initdata_encode(doc, doc_len, err);
        if (!enc)
            return caa_error_prefix(err, "encoding the default initdata");
        slot_set(encoded, enc, strlen(enc));
    }
    _cleanup_free_ char *hex = caa_initdata_digest(d->alg, doc, doc_len);
    slot_set(&slots[index_of(CAA_BOOTDATA_INITDATA_DIGEST)], hex, strlen(hex));
    return 0;
}

int caa_pud_plan_build(const void *user_data, size_t len, caa_pud_plan **ret, caa_error **err)
{
    _cleanup_cloud_config_ caa_cloud_config *cc = NULL;
    int r = caa_cloud_config_parse(user_data, len, &cc, err);
    if (r < 0)
        return r;

    caa_pud_plan *plan = xnew0(caa_pud_plan, 1);
    slot slots[CAA_ARRAY_SIZE(allowed)] = {0};
    for (size_t i = 0; i < cc->n_files; i++) {
        const caa_cloud_file *f = &cc->files[i];
        int idx = allowed_index(f->path);
        if (idx < 0) {
            note(plan, "user-data path", f->path, "is not allowed, skipped");
            continue;
        }
        if (slots[idx].set)
            note(plan, "user-data path", f->path, "is given more than once, the last one is used");
        slot_set(&slots[idx], f->content, f->content_len);
    }
    plan->has_initdata = slots[index_of(CAA_BOOTDATA_INITDATA)].set;
    r = expand_initdata(slots, plan, err);

    for (size_t i = 0; i < CAA_ARRAY_SIZE(allowed); i++) {
        if (!slots[i].set)
            continue;
        if (r < 0) {
            free(slots[i].content);
            continue;
        }
        plan->files[plan->n_files++] =
            (caa_pud_file){allowed[i].name, slots[i].content, slots[i].len, allowed[i].mode};
    }
    if (r < 0) {
        caa_pud_plan_free(plan);
        return r;
    }
    *ret = plan;
    return 0;
}

static int write_one(int dfd, const caa_pud_file *f, caa_error **err)
{
    _cleanup_free_ char *tmp = xasprintf(".%s.tmp", f->name);
    int fd = -1;
    for (int attempt = 0; attempt < 2 && fd < 0; attempt++) {
        fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, f->mode);
        /* A leftover from an interrupted run: remove it (unlinkat never follows). */
        if (fd < 0 && errno == EEXIST && attempt == 0)
            (void)unlinkat(dfd, tmp, 0);
    }
    if (fd < 0)
        return caa_error_set_errno(err, -errno, "creating a temporary file for %s", f->name);
    int r = caa_write_all(fd, f->content, f->len);
    /* fchmod: the mode must not depend on the umask. */
    if (r == 0 && fchmod(fd, f->mode) < 0)
        r = -errno;
    if (r == 0 && fsync(fd) < 0)
        r = -errno;
    if (close(fd) < 0 && r == 0)
        r = -errno;
    if (r == 0 && renameat(dfd, tmp, dfd, f->name) < 0)
        r = -errno;
    if (r < 0) {
        (void)unlinkat(dfd, tmp, 0);
        return caa_error_set_errno(err, r, "writing %s", f->name);
    }
    return 0;
}

int caa_pud_plan_write(const caa_pud_plan *plan, const char *out_dir, caa_error **err)
{
    int r = caa_mkdir_p(out_dir, 0755, err);
    if (r < 0)
        return r;
    _cleanup_close_ int dfd = open(out_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0)
        return caa_error_set_errno(err, -errno, "opening output directory '%s'", out_dir);

    for (size_t i = 0; i < plan->n_files; i++) {
        struct stat st;
        const char *name = plan->files[i].name;
        if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            if (errno == ENOENT)
                continue;
            return caa_error_set_errno(err, -errno, "checking %s/%s", out_dir, name);
        }
        if (S_ISLNK(st.st_mode))
            return caa_error_set(err, -EPERM, "refusing to replace symlink %s/%s", out_dir, name);
        if (!S_ISREG(st.st_mode))
            return caa_error_set(err, -EPERM, "refusing to replace %s/%s: not a regular file", out_dir, name);
    }
    for (size_t i = 0; i < plan->n_files; i++) {
        if ((r = write_one(dfd, &plan->files[i], err)) < 0)
            return r;
    }
    if (fsync(dfd) < 0)
        return caa_error_set_errno(err, -errno, "syncing '%s'", out_dir);
    return 0;
}
