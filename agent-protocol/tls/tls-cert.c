/* Certificate material: generation, issuing, PEM loading and encoding. */
#include <errno.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "fs.h"
#include "tls-cert-internal.h"
#include "tls-error.h"
#include "tls-openssl.h"
#include "xalloc.h"

#define CLIENT_ORG "cloud-api-adaptor"
#define CA_ORG "agent-protocol-forwarder"
/* Upstream backdates by five minutes to tolerate clock skew with the VM. */
#define BACKDATE_S (-5L * 60)
#define TWO_YEARS_S (2L * 365 * 24 * 3600)
#define TEN_YEARS_S (10L * 365 * 24 * 3600)

void caa_tls_secret_free(char *s)
{
    if (!s)
        return;
    explicit_bzero(s, strlen(s));
    free(s);
}

/* ------------------------------------------------------------ building */

static int add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value, caa_error **err)
{
    _cleanup_x509_ext_ X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);

    if (!ext || !X509_add_ext(x, ext, -1))
        return caa_tls_error_set(err, -EIO, "adding certificate extension %s", OBJ_nid2sn(nid));
    return 0;
}

/* The SAN is built field by field: the name never goes through a config
 * string, where a comma would start another entry. */
static int add_dns_san(X509 *x, const char *name, caa_error **err)
{
    _cleanup_general_names_ GENERAL_NAMES *names = GENERAL_NAMES_new();
    GENERAL_NAME *gn = GENERAL_NAME_new();
    ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();

    if (!names || !gn || !ia5 || !ASN1_STRING_set(ia5, name, (int)strlen(name))) {
        GENERAL_NAME_free(gn);
        ASN1_IA5STRING_free(ia5);
        return caa_tls_error_set(err, -EIO, "building the subject alternative name");
    }
    GENERAL_NAME_set0_value(gn, GEN_DNS, ia5);
    if (!sk_GENERAL_NAME_push(names, gn)) {
        GENERAL_NAME_free(gn);
        return caa_tls_error_set(err, -EIO, "building the subject alternative name");
    }
    if (!X509_add1_ext_i2d(x, NID_subject_alt_name, names, 0, X509V3_ADD_DEFAULT))
        return caa_tls_error_set(err, -EIO, "adding the subject alternative name");
    return 0;
}

static int set_random_serial(X509 *x, caa_error **err)
{
    _cleanup_bn_ BIGNUM *bn = BN_new();

    /* 127 random bits: positive, unique in practice, well under 20 octets. */
    if (!bn || !BN_rand(bn, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY))
        return caa_tls_error_set(err, -EIO, "generating a certificate serial number");
    if (BN_is_zero(bn) && !BN_one(bn))
        return caa_tls_error_set(err, -EIO, "generating a certificate serial number");
    if (!BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)))
        return caa_tls_error_set(err, -EIO, "setting the certificate serial number");
    return 0;
}

/* Go encodes a name attribute as PrintableString when it can, else as
 * UTF8String. We do the same: a Go client only sends its certificate when
 * its issuer's encoded name is byte-for-byte one the server listed. */
static int name_string_type(const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        bool printable = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                         (c && strchr(" '()+,-./:=?", c));
        if (!printable)
            return MBSTRING_UTF8;
    }
    return V_ASN1_PRINTABLESTRING;
}

static int add_name_entry(X509_NAME *name, int nid, const char *value)
{
    return X509_NAME_add_entry_by_NID(name, nid, name_string_type(value), (const unsigned char *)value, -1,
                                      -1, 0);
}

static int set_subject(X509 *x, const caa__tls_cert_params *p, caa_error **err)
{
    X509_NAME *name = X509_get_subject_name(x);

    if (!add_name_entry(name, NID_organizationName, p->org))
        return caa_tls_error_set(err, -EIO, "setting the certificate subject");
    if (p->common_name && !add_name_entry(name, NID_commonName, p->common_name))
        return caa_tls_error_set(err, -EIO, "setting the certificate subject");
    return 0;
}

static EVP_PKEY *new_p256_key(caa_error **err)
{
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");

    if (!key)
        caa_tls_error_set(err, -EIO, "generating an ECDSA P-256 key");
    return key;
}

int caa__tls_cert_build(const caa__tls_cert_params *p, X509 *issuer_cert, EVP_PKEY *issuer_key,
                        X509 **ret_cert, EVP_PKEY **ret_key, caa_error **err)
{
    _cleanup_pkey_ EVP_PKEY *key = NULL;
    _cleanup_x509_ X509 *x = NULL;
    X509V3_CTX ctx;
    int r;

    caa_tls_error_clear();
    key = new_p256_key(err);
    if (!key)
        return -EIO;
    x = X509_new();
    if (!x || !X509_set_version(x, X509_VERSION_3) || !X509_set_pubkey(x, key))
        return caa_tls_error_set(err, -EIO, "creating a certificate");
    r = set_random_serial(x, err);
    if (r < 0)
        return r;
    r = set_subject(x, p, err);
    if (r < 0)
        return r;
    if (!X509_set_issuer_name(x, issuer_cert ? X509_get_subject_name(issuer_cert) : X509_get_subject_name(x)))
        return caa_tls_error_set(err, -EIO, "setting the certificate issuer");
    if (!X509_gmtime_adj(X509_getm_notBefore(x), p->not_before_offset_s) ||
        !X509_gmtime_adj(X509_getm_notAfter(x), p->not_before_offset_s + p->validity_s))
        return caa_tls_error_set(err, -EIO, "setting the certificate validity");

    X509V3_set_ctx(&ctx, issuer_cert ? issuer_cert : x, x, NULL, NULL, 0);
    r = add_ext(x, &ctx, NID_basic_constraints, p->is_ca ? "critical,CA:TRUE" : "critical,CA:FALSE", err);
    if (r < 0)
        return r;
    r = add_ext(x, &ctx, NID_key_usage,
                p->is_ca            ? "critical,digitalSignature,keyCertSign,cRLSign"
                : p->self_cert_sign ? "critical,digitalSignature,keyCertSign"
                                    : "critical,digitalSignature",
                err);
    if (r < 0)
        return r;
    if (p->ext_key_usage) {
        r = add_ext(x, &ctx, NID_ext_key_usage,
                    p->ext_key_usage == NID_client_auth ? "clientAuth" : "serverAuth", err);
        if (r < 0)
            return r;
    }
    r = add_ext(x, &ctx, NID_subject_key_identifier, "hash", err);
    if (r < 0)
        return r;
    if (issuer_cert) {
        r = add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always", err);
        if (r < 0)
            return r;
    }
    if (p->dns_name) {
        r = add_dns_san(x, p->dns_name, err);
        if (r < 0)
            return r;
    }
    if (!X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()))
        return caa_tls_error_set(err, -EIO, "signing the certificate");

    *ret_cert = TAKE_PTR(x);
    *ret_key = TAKE_PTR(key);
    return 0;
}

/* ------------------------------------------------------------ PEM out */

static char *bio_to_string(BIO *bio)
{
    char *data = NULL;
    long len = BIO_get_mem_data(bio, &data);
    char *s = xmalloc((size_t)(len > 0 ? len : 0) + 1);

    if (len > 0)
        memcpy(s, data, (size_t)len);
    s[len > 0 ? len : 0] = '\0';
    return s;
}

char *caa__tls_x509_pem(X509 *cert)
{
    _cleanup_bio_ BIO *bio = BIO_new(BIO_s_mem());

    if (!bio || !PEM_write_bio_X509(bio, cert))
        caa_oom(); /* a memory BIO only fails on allocation */
    return bio_to_string(bio);
}

char *caa__tls_key_pem(EVP_PKEY *key)
{
    /* Secure-heap BIO: its buffer is wiped when freed. */
    _cleanup_bio_ BIO *bio = BIO_new(BIO_s_secmem());

    if (!bio || !PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL))
        caa_oom();
    return bio_to_string(bio);
}

/* ------------------------------------------------------------ PEM in */

static int no_password_cb(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    *(bool *)u = true;
    return -1; /* never prompt: a daemon has no terminal */
}

static bool queue_ends_with_no_start_line(void)
{
    unsigned long e = ERR_peek_last_error();
    return ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE;
}

/* All certificates of a PEM text; `what` names the source in errors. */
static int parse_certs(const char *pem, size_t len, const char *what, STACK_OF(X509) * *ret, caa_error **err)
{
    _cleanup_bio_ BIO *bio = NULL;
    _cleanup_x509_stack_ STACK_OF(X509) *certs = sk_X509_new_null();
    X509 *x;

    if (!certs || len > (size_t)INT32_MAX)
        return caa_error_set(err, -EINVAL, "%s is too large", what);
    caa_tls_error_clear();
    bio = BIO_new_mem_buf(pem, (int)len);
    if (!bio)
        caa_oom();
    while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        if (!sk_X509_push(certs, x)) {
            X509_free(x);
            caa_oom();
        }
    }
    if (!queue_ends_with_no_start_line())
        return caa_tls_error_set(err, -EINVAL, "%s holds a malformed PEM certificate", what);
    caa_tls_error_clear();
    if (sk_X509_num(certs) == 0)
        return caa_error_set(err, -EINVAL, "%s holds no PEM certificate", what);
    *ret = TAKE_PTR(certs);
    return 0;
}

static int parse_key(const char *pem, size_t len, const char *what, EVP_PKEY **ret, caa_error **err)
{
    _cleanup_bio_ BIO *bio = NULL;
    bool wanted_password = false;
    EVP_PKEY *key;

    if (len > (size_t)INT32_MAX)
        return caa_error_set(err, -EINVAL, "%s is too large", what);
    /* Every PEM key label ends so ("PRIVATE KEY", "EC PRIVATE KEY", ...);
     * without one, OpenSSL's decoder error would only say "unsupported". */
    if (!memmem(pem, len, "PRIVATE KEY-----", 16))
        return caa_error_set(err, -EINVAL, "%s holds no PEM private key", what);
    caa_tls_error_clear();
    bio = BIO_new_mem_buf(pem, (int)len);
    if (!bio)
        caa_oom();
    key = PEM_read_bio_PrivateKey(bio, NULL, no_password_cb, &wanted_password);
    if (!key) {
        if (wanted_password) {
            caa_tls_error_clear();
            return caa_error_set(err, -EINVAL,
                                 "%s holds an encrypted private key; only unencrypted keys are "
                                 "supported",
                                 what);
        }
        if (queue_ends_with_no_start_line()) {
            caa_tls_error_clear();
            return caa_error_set(err, -EINVAL, "%s holds no PEM private key", what);
        }
        return caa_tls_error_set(err, -EINVAL, "%s holds a malformed PEM private key", what);
    }
    *ret = key;
    return 0;
}

static int identity_from_parts(STACK_OF(X509) * certs, EVP_PKEY *key, const char *cert_what,
                               const char *key_what, caa_tls_identity **ret, caa_error **err)
{
    X509 *leaf = sk_X509_value(certs, 0);

    caa_tls_error_clear();
    if (!X509_check_private_key(leaf, key)) {
        caa_tls_error_clear();
        return caa_error_set(err, -EINVAL, "the private key in %s does not match the certificate in %s",
                             key_what, cert_what);
    }
    caa_tls_identity *id = xnew0(caa_tls_identity, 1);
    id->cert = sk_X509_shift(certs);
    id->chain = sk_X509_num(certs) > 0 ? certs : NULL;
    if (!id->chain)
        sk_X509_free(certs);
    id->key = key;
    *ret = id;
    return 0;
}

static int identity_from_pem_text(const char *cert_pem, size_t cert_len, const char *key_pem, size_t key_len,
                                  const char *cert_what, const char *key_what, caa_tls_identity **ret,
                                  caa_error **err)
{
    _cleanup_x509_stack_ STACK_OF(X509) *certs = NULL;
    _cleanup_pkey_ EVP_PKEY *key = NULL;
    int r;

    r = parse_certs(cert_pem, cert_len, cert_what, &certs, err);
    if (r < 0)
        return r;
    r = parse_key(key_pem, key_len, key_what, &key, err);
    if (r < 0)
        return r;
    r = identity_from_parts(certs, key, cert_what, key_what, ret, err);
    if (r < 0)
        return r;
    certs = NULL;
    key = NULL;
    return 0;
}

/* ------------------------------------------------------------ identities */

caa_tls_identity *caa__tls_identity_new(X509 *cert, EVP_PKEY *key)
{
    caa_tls_identity *id = xnew0(caa_tls_identity, 1);
    id->cert = cert;
    id->key = key;
    return id;
}

int caa_tls_identity_generate_client(caa_tls_identity **ret, caa_error **err)
{
    const caa__tls_cert_params p = {
        .org = CLIENT_ORG,
        .self_cert_sign = true,
        .ext_key_usage = NID_client_auth,
        .not_before_offset_s = BACKDATE_S,
        .validity_s = TWO_YEARS_S,
    };
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    int r = caa__tls_cert_build(&p, NULL, NULL, &cert, &key, err);

    if (r < 0) {
        caa_error_prefix(err, "generating the TLS client certificate");
        return r;
    }
    *ret = caa__tls_identity_new(cert, key);
    return 0;
}

int caa_tls_identity_load_files(const char *cert_file, const char *key_file, caa_tls_identity **ret,
                                caa_error **err)
{
    _cleanup_free_ char *cert_pem = NULL, *cert_what = NULL, *key_what = NULL;
    _cleanup_secret_ char *key_pem = NULL;
    size_t cert_len = 0, key_len = 0;
    int r;

    r = caa_read_file(cert_file, CAA_TLS_MAX_PEM_FILE, 0, &cert_pem, &cert_len, err);
    if (r < 0) {
        caa_error_prefix(err, "loading the TLS certificate");
        return r;
    }
    r = caa_read_file(key_file, CAA_TLS_MAX_PEM_FILE, 0, &key_pem, &key_len, err);
    if (r < 0) {
        caa_error_prefix(err, "loading the TLS private key");
        return r;
    }
    cert_what = xasprintf("certificate file '%s'", cert_file);
    key_what = xasprintf("key file '%s'", key_file);
    return identity_from_pem_text(cert_pem, cert_len, key_pem, key_len, cert_what, key_what, ret, err);
}

int caa_tls_identity_from_pem(const char *cert_pem, const char *key_pem, caa_tls_identity **ret,
                              caa_error **err)
{
    if (!cert_pem || !key_pem)
        return caa_error_set(err, -EINVAL, "TLS certificate or key PEM missing");
    return identity_from_pem_text(cert_pem, strlen(cert_pem), key_pem, strlen(key_pem), "the certificate PEM",
                                  "the private key PEM", ret, err);
}

char *caa_tls_identity_cert_pem(const caa_tls_identity *id)
{
    _cleanup_free_ char *out = caa__tls_x509_pem(id->cert);

    for (int i = 0; id->chain && i < sk_X509_num(id->chain); i++) {
        _cleanup_free_ char *more = caa__tls_x509_pem(sk_X509_value(id->chain, i));
        char *joined = xasprintf("%s%s", out, more);
        free(out);
        out = joined;
    }
    return TAKE_PTR(out);
}

char *caa_tls_identity_key_pem(const caa_tls_identity *id)
{
    return caa__tls_key_pem(id->key);
}

void caa_tls_identity_free(caa_tls_identity *id)
{
    if (!id)
        return;
    X509_free(id->cert);
    if (id->chain)
        sk_X509_pop_free(id->chain, X509_free);
    EVP_PKEY_free(id->key);
    free(id);
}

/* ------------------------------------------------------------ trust */

static int trust_from_text(const char *pem, size_t len, const char *what, caa_tls_trust **ret,
                           caa_error **err)
{
    STACK_OF(X509) *certs = NULL;
    int r = parse_certs(pem, len, what, &certs, err);

    if (r < 0)
        return r;
    caa_tls_trust *t = xnew0(caa_tls_trust, 1);
    t->certs = certs;
    *ret = t;
    return 0;
}

int caa_tls_trust_from_pem(const char *pem, caa_tls_trust **ret, caa_error **err)
{
    if (!pem)
        return caa_error_set(err, -EINVAL, "CA certificate PEM missing");
    return trust_from_text(pem, strlen(pem), "the CA certificate PEM", ret, err);
}

int caa_tls_trust_load_file(const char *path, caa_tls_trust **ret, caa_error **err)
{
    _cleanup_free_ char *pem = NULL, *what = NULL;
    size_t len = 0;
    int r = caa_read_file(path, CAA_TLS_MAX_PEM_FILE, 0, &pem, &len, err);

    if (r < 0) {
        caa_error_prefix(err, "loading the CA certificate");
        return r;
    }
    what = xasprintf("CA certificate file '%s'", path);
    return trust_from_text(pem, len, what, ret, err);
}

size_t caa_tls_trust_count(const caa_tls_trust *t)
{
    return t && t->certs ? (size_t)sk_X509_num(t->certs) : 0;
}

void caa_tls_trust_free(caa_tls_trust *t)
{
    if (!t)
        return;
    if (t->certs)
        sk_X509_pop_free(t->certs, X509_free);
    free(t);
}

/* ------------------------------------------------------------ CA */

int caa_tls_ca_new(caa_tls_ca **ret, caa_error **err)
{
    const caa__tls_cert_params p = {
        .org = CA_ORG,
        .is_ca = true,
        .not_before_offset_s = BACKDATE_S,
        .validity_s = TEN_YEARS_S,
    };
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    int r = caa__tls_cert_build(&p, NULL, NULL, &cert, &key, err);

    if (r < 0) {
        caa_error_prefix(err, "creating the TLS CA");
        return r;
    }
    caa_tls_ca *ca = xnew0(caa_tls_ca, 1);
    ca->cert = cert;
    ca->key = key;
    *ret = ca;
    return 0;
}

int caa_tls_ca_from_pem(const char *cert_pem, const char *key_pem, caa_tls_ca **ret, caa_error **err)
{
    _cleanup_tls_identity_ caa_tls_identity *id = NULL;
    int r = caa_tls_identity_from_pem(cert_pem, key_pem, &id, err);

    if (r < 0) {
        caa_error_prefix(err, "restoring the TLS CA");
        return r;
    }
    if (X509_check_ca(id->cert) != 1)
        return caa_error_set(err, -EINVAL, "restoring the TLS CA: the certificate is not a CA certificate");
    caa_tls_ca *ca = xnew0(caa_tls_ca, 1);
    ca->cert = TAKE_PTR(id->cert);
    ca->key = TAKE_PTR(id->key);
    *ret = ca;
    return 0;
}

char *caa_tls_ca_cert_pem(const caa_tls_ca *ca)
{
    return caa__tls_x509_pem(ca->cert);
}

char *caa_tls_ca_key_pem(const caa_tls_ca *ca)
{
    return caa__tls_key_pem(ca->key);
}

caa_tls_trust *caa_tls_ca_trust(const caa_tls_ca *ca)
{
    caa_tls_trust *t = xnew0(caa_tls_trust, 1);

    t->certs = sk_X509_new_null();
    if (!t->certs || !X509_up_ref(ca->cert))
        caa_oom();
    if (!sk_X509_push(t->certs, ca->cert))
        caa_oom();
    return t;
}

bool caa_tls_valid_dns_name(const char *s)
{
    size_t total = 0, label = 0;

    if (!s || !*s)
        return false;
    for (const char *p = s; *p; p++, total++) {
        char c = *p;
        if (c == '.') {
            if (label == 0 || p[-1] == '-')
                return false;
            label = 0;
            continue;
        }
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && c != '-')
            return false;
        if (c == '-' && label == 0)
            return false; /* no leading hyphen */
        if (++label > 63)
            return false;
    }
    return total <= 253 && label > 0 && s[total - 1] != '-';
}

int caa_tls_ca_issue_server(caa_tls_ca *ca, const char *instance_name, char **ret_cert_pem,
                            char **ret_key_pem, caa_error **err)
{
    if (!caa_tls_valid_dns_name(instance_name))
        return caa_error_set(err, -EINVAL, "cannot issue a TLS server certificate for '%s': not a DNS name",
                             instance_name ? instance_name : "");
    const caa__tls_cert_params p = {
        .org = CA_ORG,
        .common_name = instance_name,
        .dns_name = instance_name,
        .ext_key_usage = NID_server_auth,
        .not_before_offset_s = BACKDATE_S,
        .validity_s = TWO_YEARS_S,
    };
    _cleanup_x509_ X509 *cert = NULL;
    _cleanup_pkey_ EVP_PKEY *key = NULL;
    int r = caa__tls_cert_build(&p, ca->cert, ca->key, &cert, &key, err);

    if (r < 0) {
        caa_error_prefix(err, "issuing the TLS server certificate for '%s'", instance_name);
        return r;
    }
    *ret_cert_pem = caa__tls_x509_pem(cert);
    *ret_key_pem = caa__tls_key_pem(key);
    return 0;
}

void caa_tls_ca_free(caa_tls_ca *ca)
{
    if (!ca)
        return;
    X509_free(ca->cert);
    EVP_PKEY_free(ca->key);
    free(ca);
}

const char *caa_tls_server_name(bool user_ca, const char *instance_name)
{
    return user_ca ? CAA_TLS_USER_CA_SERVER_NAME : instance_name;
}
