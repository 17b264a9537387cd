/* Wrappers around the provider ops table: argument checks live here so that
 * providers never repeat them. */
#include "provider.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "strv.h"
#include "xalloc.h"

caa_instance *caa_instance_new(const char *id, const char *name)
{
    caa_instance *inst = xcalloc(1, sizeof(*inst));
    inst->id = id ? xstrdup(id) : NULL;
    inst->name = name ? xstrdup(name) : NULL;
    return inst;
}

void caa_instance_add_ip(caa_instance *inst, const char *ip)
{
    caa_strv_push(&inst->ips, ip);
}

void caa_instance_free(caa_instance *inst)
{
    if (!inst)
        return;
    free(inst->id);
    free(inst->name);
    caa_strv_free(inst->ips);
    free(inst);
}

void caa_instance_list_free(caa_instance **list)
{
    for (size_t i = 0; list && list[i]; i++)
        caa_instance_free(list[i]);
    free(list);
}

caa_provider *caa_provider_new(const caa_provider_ops *ops, uv_loop_t *loop)
{
    caa_provider *p = xcalloc(1, sizeof(*p));
    p->ops = ops;
    p->loop = loop;
    p->config = xcalloc(1, ops->config_size ? ops->config_size : 1);
    return p;
}

caa_option_set caa_provider_option_set(caa_provider *p)
{
    return (caa_option_set){
        .title = p->ops->name,
        .opts = p->ops->options,
        .n_opts = p->ops->n_options,
        .target = p->config,
    };
}

int caa_provider_init(caa_provider *p, caa_error **err)
{
    if (!p->ops->init)
        return 0;
    return p->ops->init(p->loop, p->config, &p->priv, err);
}

int caa_provider_verify_config(caa_provider *p, caa_error **err)
{
    if (!p->ops->verify_config)
        return 0;
    return p->ops->verify_config(p->priv, err);
}

int caa_provider_validate_spec(caa_provider *p, const caa_instance_spec *spec, caa_error **err)
{
    if (!spec || !spec->instance_name || !spec->sandbox_id)
        return caa_error_set(err, -EINVAL, "instance spec without name or sandbox id");
    if (!p->ops->validate_spec)
        return 0;
    return p->ops->validate_spec(p->priv, spec, err);
}

int caa_provider_create_instance(caa_provider *p, const caa_instance_spec *spec, caa_instance_cb cb,
                                 void *opaque, caa_error **err)
{
    if (p->torn_down)
        return caa_error_set(err, -ESHUTDOWN, "provider %s was torn down", p->ops->name);
    if (!cb)
        return caa_error_set(err, -EINVAL, "create_instance without callback");
    int r = caa_provider_validate_spec(p, spec, err);
    if (r < 0)
        return r;
    if (!p->ops->create_instance)
        return caa_error_set(err, -EOPNOTSUPP, "provider %s cannot create instances", p->ops->name);
    return p->ops->create_instance(p->priv, spec, cb, opaque, err);
}

int caa_provider_delete_instance(caa_provider *p, const char *instance_id, caa_done_cb cb, void *opaque,
                                 caa_error **err)
{
    if (p->torn_down)
        return caa_error_set(err, -ESHUTDOWN, "provider %s was torn down", p->ops->name);
    if (!cb || !instance_id || !*instance_id)
        return caa_error_set(err, -EINVAL, "delete_instance without instance id or callback");
    if (!p->ops->delete_instance)
        return caa_error_set(err, -EOPNOTSUPP, "provider %s cannot delete instances", p->ops->name);
    return p->ops->delete_instance(p->priv, instance_id, cb, opaque, err);
}

int caa_provider_list_instances(caa_provider *p, caa_list_cb cb, void *opaque, caa_error **err)
{
    if (p->torn_down)
        return caa_error_set(err, -ESHUTDOWN, "provider %s was torn down", p->ops->name);
    if (!cb)
        return caa_error_set(err, -EINVAL, "list_instances without callback");
    if (!p->ops->list_instances)
        return caa_error_set(err, -EOPNOTSUPP, "provider %s cannot list instances", p->ops->name);
    return p->ops->list_instances(p->priv, cb, opaque, err);
}

int caa_provider_get_instance(caa_provider *p, const char *instance_id, caa_instance_cb cb, void *opaque,
                              caa_error **err)
{
    if (p->torn_down)
        return caa_error_set(err, -ESHUTDOWN, "provider %s was torn down", p->ops->name);
    if (!cb || !instance_id || !*instance_id)
        return caa_error_set(err, -EINVAL, "get_instance without instance id or callback");
    if (!p->ops->get_instance)
        return caa_error_set(err, -EOPNOTSUPP, "provider %s cannot look up instances", p->ops->name);
    return p->ops->get_instance(p->priv, instance_id, cb, opaque, err);
}

int caa_provider_cancel(caa_provider *p, void *opaque)
{
    if (p->torn_down)
        return -ESHUTDOWN;
    if (!p->ops->cancel)
        return -EOPNOTSUPP;
    p->ops->cancel(p->priv, opaque);
    return 0;
}

void caa_provider_teardown(caa_provider *p)
{
    if (!p || p->torn_down)
        return;
    p->torn_down = true;
    if (p->ops->teardown && p->priv)
        p->ops->teardown(p->priv);
}

void caa_provider_free(caa_provider *p)
{
    if (!p)
        return;
    caa_provider_teardown(p);
    caa_option_set set = caa_provider_option_set(p);
    caa_options_free(&set, 1);
    free(p->config);
    free(p);
}
