/* process-user-data: turning a cloud-config document into files.
 *
 * Two steps so that hostile or broken user-data writes nothing: build a plan
 * (strict parse, allow-list, initdata decode and expansion, digest), then
 * write the plan into the output directory. */
#pragma once

#include <stddef.h>
#include <sys/types.h>

#include "error.h"

#define CAA_PUD_MAX_FILES 16

typedef struct caa_pud_file {
    const char *name; /* file name inside the output directory (static string) */
    char *content;
    size_t len;
    mode_t mode;
} caa_pud_file;

typedef struct caa_pud_plan {
    caa_pud_file files[CAA_PUD_MAX_FILES]; /* in write order */
    size_t n_files;
    int has_initdata; /* 0: the default document was measured */
} caa_pud_plan;

void caa_pud_plan_free(caa_pud_plan *plan);
CAA_DEFINE_CLEANUP(caa_pud_plan *, caa_pud_plan_free)
#define _cleanup_pud_plan_ _cleanup_(caa_pud_plan_freep)

/* Validates user-data completely and computes every file to write:
 *  - the cloud-config must parse strictly (cloud-config.h);
 *  - each path must be exactly /run/peerpod/<name> for a name on the
 *    allow-list (apf.json auth.json initdata aa.toml cdh.toml policy.rego
 *    scratch-space.marker), each at most once;
 *  - initdata, when present, must decode and parse; its aa.toml, cdh.toml
 *    and policy.rego entries become files and may then not also be given
 *    directly; initdata.digest is always produced (default document when
 *    there is no initdata).
 * -EINVAL/-EFBIG with a message naming the first problem. */
int caa_pud_plan_build(const void *user_data, size_t len, caa_pud_plan **ret, caa_error **err);

/* The planned file with this name, or NULL. */
const caa_pud_file *caa_pud_plan_find(const caa_pud_plan *plan, const char *name);

/* Creates out_dir (0755 parents) and writes every planned file: a temporary
 * file created next to it with O_EXCL|O_NOFOLLOW, fsync, rename. Before the
 * first write every destination is checked; an existing symlink or non-regular
 * file there is an error and nothing is written. */
int caa_pud_plan_write(const caa_pud_plan *plan, const char *out_dir, caa_error **err);
