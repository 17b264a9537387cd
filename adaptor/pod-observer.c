/* The manager's pod observer list (manager.h) and the notifications the pod
 * layer sends through it (pod-internal.h). */
#include <assert.h>
#include <stdlib.h>

#include "manager.h"
#include "pod-internal.h"
#include "xalloc.h"

void caa_manager_add_pod_observer(caa_manager *m, const caa_pod_observer *ops, void *opaque)
{
    assert(ops);
    m->observers = xrealloc(m->observers, (m->n_observers + 1) * sizeof(*m->observers));
    m->observers[m->n_observers++] = (caa_pod_observer_entry){ops, opaque};
}

void caa_manager_remove_pod_observer(caa_manager *m, const caa_pod_observer *ops, void *opaque)
{
    for (size_t i = 0; i < m->n_observers; i++) {
        if (m->observers[i].ops == ops && m->observers[i].opaque == opaque) {
            m->n_observers--;
            for (size_t j = i; j < m->n_observers; j++)
                m->observers[j] = m->observers[j + 1];
            return;
        }
    }
}

void caa_pod_observers_free(caa_manager *m)
{
    free(m->observers);
    m->observers = NULL;
    m->n_observers = 0;
}

/* Callbacks must not add or remove observers (manager.h). */
#define NOTIFY(m, member, ...)                                                                               \
    do {                                                                                                     \
        for (size_t i_ = 0; i_ < (m)->n_observers; i_++) {                                                   \
            const caa_pod_observer_entry *o_ = &(m)->observers[i_];                                          \
            if (o_->ops->member)                                                                             \
                o_->ops->member(__VA_ARGS__, o_->opaque);                                                    \
        }                                                                                                    \
    } while (0)

void caa_pod_notify_added(caa_pod *pod)
{
    NOTIFY(pod->mgr, pod_added, pod);
}

void caa_pod_notify_state(caa_pod *pod, caa_pod_state from, caa_pod_state to)
{
    NOTIFY(pod->mgr, state_changed, pod, from, to);
}

void caa_pod_notify_instance(caa_pod *pod)
{
    NOTIFY(pod->mgr, instance_changed, pod);
}

void caa_pod_notify_removed(caa_pod *pod)
{
    NOTIFY(pod->mgr, pod_removed, pod);
}
