/* peerpod-ctrl <provider> [flags]: main() of the PeerPod controller, shared
 * by the installed binary and the test binary (which registers the test
 * provider first). */
#pragma once

int peerpod_ctrl_main(int argc, char **argv);
