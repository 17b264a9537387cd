/* process-user-data: turning a cloud-config document into files.
 *
 * Two steps so that hostile or broken user-data writes nothing: build a plan
 * (strict parse, allow-list, initdata decode and expansion, digest), then
 * write the plan into the output directory. */
#pragma once

#include <stddef.h>
#include <sys/types.h>

#include "error.h"

#define CAA_PUD_MAX_FILES 16 /* more than the allow-list holds */

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
    char **notes;     /* what was skipped or replaced, for the log (no contents) */
    size_t n_notes;
} caa_pud_plan;

void caa_pud_plan_free(caa_pud_plan *plan);
CAA_DEFINE_CLEANUP(caa_pud_plan *, caa_pud_plan_free)
#define _cleanup_pud_plan_ _cleanup_(caa_pud_plan_freep)

/* Validates user-data completely and computes every file to write, as
 * upstream's process-user-data does:
 *  - the cloud-config must parse strictly (cloud-config.h);
 *  - a path that is not exactly /run/peerpod/<name> for a name on upstream's
 *    list (apf.json auth.json initdata aa.toml cdh.toml scratch-space.marker)
 *    is skipped with a note; a path given twice: the last one is used;
 *  - initdata, when present, must decode and parse; its aa.toml, cdh.toml
 *    and policy.rego entries become files, replacing directly given ones;
 *    other entries are skipped with a note;
 *  - without initdata the default document is used: its aa.toml (unless
 *    given directly), the initdata file (encoded) and the digest;
 *    initdata.digest is always produced.
 * -EINVAL/-EFBIG with a message naming the first problem. */
int caa_pud_plan_build(const void *user_data, size_t len, caa_pud_plan **ret, caa_error **err);

/* The planned file with this name, or NULL. */
const caa_pud_file *caa_pud_plan_find(const caa_pud_plan *plan, const char *name);

/* Creates out_dir (0755 parents) and writes every planned file: a temporary
 * file created next to it with O_EXCL|O_NOFOLLOW, fsync, rename. Before the
 * first write every destination is checked; an existing symlink or non-regular
 * file there is an error and nothing is written. */
int caa_pud_plan_write(const caa_pud_plan *plan, const char *out_dir, caa_error **err);
