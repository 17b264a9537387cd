/* cloud-api-adaptor: the peer-pods remote hypervisor daemon. */
#include "adaptor-main.h"

int main(int argc, char **argv)
{
    return caa_adaptor_main(argc, argv);
}
