/* The daemon's entry point, in the core library so that test binaries can
 * register extra providers (caa_provider_register) and run the same main. */
#pragma once

/* cloud-api-adaptor <provider> [flags] | help | version.
 * Returns the process exit status: 0 success (also after SIGTERM/SIGINT),
 * 1 runtime failure, 2 usage error. */
int caa_adaptor_main(int argc, char **argv);
