/* Compiled-in providers, selected by name on the command line. */
#include "provider.h"

#include <errno.h>
#include <string.h>

#define MAX_PROVIDERS 16

#ifdef HAVE_PROVIDER_LIBVIRT
extern const caa_provider_ops caa_libvirt_provider;
#endif
#ifdef HAVE_PROVIDER_AWS
extern const caa_provider_ops caa_aws_provider;
#endif
#ifdef HAVE_PROVIDER_AZURE
extern const caa_provider_ops caa_azure_provider;
#endif

static const caa_provider_ops *const builtin[] = {
#ifdef HAVE_PROVIDER_LIBVIRT
    &caa_libvirt_provider,
#endif
#ifdef HAVE_PROVIDER_AWS
    &caa_aws_provider,
#endif
#ifdef HAVE_PROVIDER_AZURE
    &caa_azure_provider,
#endif
    NULL,
};

static const caa_provider_ops *extra[MAX_PROVIDERS];
static size_t n_extra;

const caa_provider_ops *caa_provider_lookup(const char *name)
{
    for (size_t i = 0; builtin[i]; i++)
        if (strcmp(builtin[i]->name, name) == 0)
            return builtin[i];
    for (size_t i = 0; i < n_extra; i++)
        if (strcmp(extra[i]->name, name) == 0)
            return extra[i];
    return NULL;
}

int caa_provider_register(const caa_provider_ops *ops, caa_error **err)
{
    if (!ops || !ops->name || !*ops->name)
        return caa_error_set(err, -EINVAL, "provider without a name");
    if (caa_provider_lookup(ops->name))
        return caa_error_set(err, -EEXIST, "provider %s is already registered", ops->name);
    if (n_extra >= MAX_PROVIDERS)
        return caa_error_set(err, -ENOSPC, "too many providers");
    extra[n_extra++] = ops;
    return 0;
}

void caa_provider_names(const char **names, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; builtin[i] && n + 1 < max; i++)
        names[n++] = builtin[i]->name;
    for (size_t i = 0; i < n_extra && n + 1 < max; i++)
        names[n++] = extra[i]->name;
    if (max)
        names[n] = NULL;
}
