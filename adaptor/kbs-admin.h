/* The KBS (Trustee) admin API, as upstream's secure comms used it to hand
 * the pod VMs their SSH keys (docs/secure-comms.md, Trustee mode):
 *
 *   POST   <base>/kbs/v0/resource/<repo>/<type>/<tag>   body: the raw bytes
 *   DELETE <base>/kbs/v0/resource/<repo>/<type>/<tag>
 *
 * each with "Authorization: Bearer <JWT>", a fresh EdDSA (Ed25519) token
 * signed with the Trustee admin key (PKCS#8 PEM, Secret kbs-client). The
 * base is https://<addr>, plain http:// only for a loopback host (tests).
 * Requests run on the caller's libuv loop (providers/common/http.h). */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "error.h"

#define CAA_KBS_JWT_LIFETIME_S 300

typedef struct caa_kbs_admin caa_kbs_admin;

/* Loads the admin key (an Ed25519 PKCS#8 PEM file) and builds the client. */
int caa_kbs_admin_new(uv_loop_t *loop, const char *kbs_addr, const char *admin_key_path, caa_kbs_admin **ret,
                      caa_error **err);
/* Cancels what is in flight (callbacks run later with -ECANCELED). */
void caa_kbs_admin_free(caa_kbs_admin *k);

/* status 0: the KBS answered 2xx. err belongs to the callback. */
typedef void (*caa_kbs_done_cb)(int status, caa_error *err, void *opaque);
typedef struct caa_kbs_call caa_kbs_call;

/* resource: "<repo>/<type>/<tag>", e.g. "default/pp-<sid>/privateKey". The
 * body is copied. */
int caa_kbs_admin_post(caa_kbs_admin *k, const char *resource, const void *body, size_t len,
                       caa_kbs_done_cb cb, void *opaque, caa_kbs_call **ret, caa_error **err);
int caa_kbs_admin_delete(caa_kbs_admin *k, const char *resource, caa_kbs_done_cb cb, void *opaque,
                         caa_kbs_call **ret, caa_error **err);
/* The call's cb then runs later with -ECANCELED (only before cb ran). */
void caa_kbs_call_cancel(caa_kbs_call *call);

/* The admin token (pure, for tests): header {"alg":"EdDSA","typ":"JWT"};
 * registered claims iat/nbf/exp (what Trustee checks) plus upstream's
 * issued_at/invalid_before/expires_at; exp = now + CAA_KBS_JWT_LIFETIME_S. */
char *caa_kbs_admin_jwt(const char *key_pem, size_t key_len, int64_t now, caa_error **err);
