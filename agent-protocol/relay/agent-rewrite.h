/* The kata-agent request rewrites done on the way to the agent: pure
 * functions from a serialized request message to a serialized request
 * message, no I/O (fuzzed by the forwarder-rewrite target).
 *
 * Each one decodes only the message it changes (protobuf-c keeps fields the
 * subset .proto does not know and writes them back), changes it and
 * re-encodes it. When nothing needs changing the original bytes are kept.
 *
 * Return values: 0 = *ret (*ret_len bytes) holds the new payload (malloc'd);
 * 1 = the payload is to be forwarded unchanged (*ret untouched);
 * negative (-EINVAL) = the payload is not a valid message, err says why. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define CAA_AGENT_SERVICE "grpc.AgentService"
#define CAA_HEALTH_SERVICE "grpc.Health"

/* OCI annotation the worker sets for pods that asked for GPUs (upstream
 * cloud-api-adaptor, CDI device request for the pod VM's GPUs). */
#define CAA_CDI_PEERPODS_ANNOTATION "cdi.k8s.io/peer-pods"
#define CAA_CDI_ALL_NVIDIA_GPUS "nvidia.com/gpu=all"
/* The container annotation that triggers it (upstream proxy/service.go). */
#define CAA_CDI_GPUS_ANNOTATION "io.katacontainers.config.hypervisor.default_gpus"

/* Forwarder, CreateSandbox: clears `dns` so the agent leaves the VM's
 * resolv.conf alone (the pod's DNS settings live in its containers). */
int caa_agent_rewrite_sandbox_dns(const uint8_t *in, size_t len, uint8_t **ret, size_t *ret_len,
                                  caa_error **err);

/* Forwarder, CreateContainer: appends {type "network", path netns_path} to
 * OCI.Linux.Namespaces (creating Linux when absent), so every container
 * joins the pod network namespace. A request without an OCI spec is left
 * unchanged (the agent rejects it). */
int caa_agent_rewrite_container_netns(const uint8_t *in, size_t len, const char *netns_path, uint8_t **ret,
                                      size_t *ret_len, caa_error **err);

/* Worker, CreateContainer, as upstream's proxy: when the container's OCI
 * annotation io.katacontainers.config.hypervisor.default_gpus is non-empty,
 * sets OCI annotation cdi.k8s.io/peer-pods = nvidia.com/gpu=all (replacing
 * another value of that key). Unchanged (1) without that annotation, when
 * the CDI annotation already has that value, or without an OCI spec. */
int caa_agent_rewrite_container_gpu(const uint8_t *in, size_t len, uint8_t **ret, size_t *ret_len,
                                    caa_error **err);
