/* Where boot data lives in the pod VM. The cloud-config names files by these
 * absolute paths; process-user-data maps them into its output directory. */
#pragma once

#define CAA_PEERPOD_DIR "/run/peerpod"

#define CAA_BOOTDATA_APF_JSON "apf.json"
#define CAA_BOOTDATA_AUTH_JSON "auth.json"
#define CAA_BOOTDATA_INITDATA "initdata"
#define CAA_BOOTDATA_AA_TOML "aa.toml"
#define CAA_BOOTDATA_CDH_TOML "cdh.toml"
#define CAA_BOOTDATA_POLICY_REGO "policy.rego"
#define CAA_BOOTDATA_SCRATCH_MARKER "scratch-space.marker"
#define CAA_BOOTDATA_INITDATA_DIGEST "initdata.digest"
