/* Serving certificate with reload; see serving-cert.h. */
#define LOG_COMPONENT "webhook/cert"
#include "serving-cert.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"
#include "tls-cert.h"
#include "tls-context.h"
#include "xalloc.h"

typedef struct file_signature {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
} file_signature;

struct caa_serving_cert {
    char *cert_path, *key_path;
    caa_tls_profile profile;
    SSL_CTX *ctx;
    file_signature loaded[2]; /* of what ctx was built from */
    file_signature failed[2]; /* last pair that did not load (logged once) */
    unsigned generation;
};

static void signature_of(const char *path, file_signature *ret)
{
    struct stat st;
    memset(ret, 0, sizeof(*ret));
    if (stat(path, &st) == 0) {
        ret->dev = st.st_dev;
        ret->ino = st.st_ino;
        ret->size = st.st_size;
        ret->mtime = st.st_mtim;
    }
}

static bool same_signatures(const file_signature a[2], const file_signature b[2])
{
    return memcmp(a, b, 2 * sizeof(file_signature)) == 0;
}

static int build_ctx(caa_serving_cert *sc, SSL_CTX **ret, caa_error **err)
{
    caa_tls_identity *id = NULL;
    if (caa_tls_identity_load_files(sc->cert_path, sc->key_path, &id, err) < 0)
        return -EINVAL;
    caa_tls_server_config cfg = {.profile = &sc->profile, .identity = id, .skip_verify = true};
    int r = caa_tls_server_ctx_new(&cfg, ret, err);
    caa_tls_identity_free(id);
    return r;
}

int caa_serving_cert_new(const char *dir, const caa_tls_profile *profile, caa_serving_cert **ret,
                         caa_error **err)
{
    caa_serving_cert *sc = xcalloc(1, sizeof(*sc));
    sc->cert_path = xasprintf("%s/tls.crt", dir);
    sc->key_path = xasprintf("%s/tls.key", dir);
    caa_tls_profile_copy(profile, &sc->profile);
    /* Signatures first: a change racing with the load is seen next time. */
    signature_of(sc->cert_path, &sc->loaded[0]);
    signature_of(sc->key_path, &sc->loaded[1]);
    if (build_ctx(sc, &sc->ctx, err) < 0) {
        caa_serving_cert_free(sc);
        return caa_error_prefix(err, "serving certificate in %s", dir);
    }
    sc->generation = 1;
    *ret = sc;
    return 0;
}

SSL_CTX *caa_serving_cert_ctx(caa_serving_cert *sc)
{
    file_signature now[2];
    signature_of(sc->cert_path, &now[0]);
    signature_of(sc->key_path, &now[1]);
    if (same_signatures(now, sc->loaded) || same_signatures(now, sc->failed))
        return sc->ctx;

    _cleanup_error_ caa_error *err = NULL;
    SSL_CTX *fresh = NULL;
    if (build_ctx(sc, &fresh, &err) < 0) {
        log_warn("serving certificate changed but does not load, still using the previous one: %s",
                 caa_error_msg(err));
        memcpy(sc->failed, now, sizeof(now));
        return sc->ctx;
    }
    SSL_CTX_free(sc->ctx);
    sc->ctx = fresh;
    memcpy(sc->loaded, now, sizeof(now));
    sc->generation++;
    log_info("serving certificate reloaded from %s (generation %u)", sc->cert_path, sc->generation);
    return sc->ctx;
}

unsigned caa_serving_cert_generation(const caa_serving_cert *sc)
{
    return sc->generation;
}

void caa_serving_cert_free(caa_serving_cert *sc)
{
    if (!sc)
        return;
    SSL_CTX_free(sc->ctx);
    caa_tls_profile_done(&sc->profile);
    free(sc->cert_path);
    free(sc->key_path);
    free(sc);
}
