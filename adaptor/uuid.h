/* Random (version 4) UUIDs, used as per-pod idempotency keys. */
#pragma once

#define CAA_UUID_STRING_LEN 36

/* Writes 36 characters plus NUL. */
void caa_uuid_v4(char out[CAA_UUID_STRING_LEN + 1]);
