/* cloud-api-adaptor-all-linked: the daemon as it was before provider modules,
 * for bench/daemon-rss only. Every compiled-in provider is linked into the
 * binary and registered statically next to the test provider, so the bench
 * can show, at the same commit, what loading providers as modules saves. */
#include <stdio.h>

#include "adaptor-main.h"
#include "test-provider.h"

#ifdef HAVE_PROVIDER_LIBVIRT
extern const caa_provider_ops caa_libvirt_provider;
#endif
#ifdef HAVE_PROVIDER_AWS
extern const caa_provider_ops caa_aws_provider;
#endif
#ifdef HAVE_PROVIDER_AZURE
extern const caa_provider_ops caa_azure_provider;
#endif

static const caa_provider_ops *const linked[] = {
    &caa_test_provider,
#ifdef HAVE_PROVIDER_LIBVIRT
    &caa_libvirt_provider,
#endif
#ifdef HAVE_PROVIDER_AWS
    &caa_aws_provider,
#endif
#ifdef HAVE_PROVIDER_AZURE
    &caa_azure_provider,
#endif
};

int main(int argc, char **argv)
{
    for (size_t i = 0; i < sizeof(linked) / sizeof(linked[0]); i++) {
        caa_error *err = NULL;
        if (caa_provider_register(linked[i], &err) < 0) {
            fprintf(stderr, "registering provider %s: %s\n", linked[i]->name, caa_error_msg(err));
            caa_error_free(err);
            return 1;
        }
    }
    return caa_adaptor_main(argc, argv);
}
