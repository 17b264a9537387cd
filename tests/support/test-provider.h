/* The "test" provider: instances are JSON files in -test-state-dir, so tests
 * can see leaks from outside and a restarted daemon finds them again.
 *
 * Flags: -test-state-dir DIR (required), -test-create-delay D,
 * -test-delete-delay D, -test-fail-create, -test-fail-delete,
 * -test-fail-after-create (returns a created instance with an error),
 * -test-ip IP (default 198.18.0.2; "" gives instances without IPs),
 * -test-user-data-limit N (validate_spec refuses larger user-data).
 * The user-data a create received is kept in <state-dir>/<id>.user-data. */
#pragma once

#include "provider.h"

extern const caa_provider_ops caa_test_provider;
