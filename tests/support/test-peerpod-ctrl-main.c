/* peerpod-ctrl-test: the real peerpod-ctrl plus the "test" provider. */
#include <stdio.h>

#include "ctrl-main.h"
#include "test-provider.h"

int main(int argc, char **argv)
{
    caa_error *err = NULL;
    if (caa_provider_register(&caa_test_provider, &err) < 0) {
        fprintf(stderr, "registering the test provider: %s\n", caa_error_msg(err));
        caa_error_free(err);
        return 1;
    }
    return peerpod_ctrl_main(argc, argv);
}
