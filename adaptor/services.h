/* ttRPC services served on the hypervisor socket. */
#pragma once

#include "error.h"
#include "manager.h"

#define CAA_HYPERVISOR_SERVICE "hypervisor.Hypervisor"
#define CAA_PODVMINFO_SERVICE "podvminfo.PodVMInfo"
/* What Version answers, as upstream. */
#define CAA_HYPERVISOR_VERSION "0.0.0"

int caa_hypervisor_service_register(caa_manager *m, ttrpc_server *s, caa_error **err);
int caa_podvminfo_service_register(caa_manager *m, ttrpc_server *s, caa_error **err);
/* Answers every waiting GetInfo call (shutdown). */
void caa_podvminfo_cancel_all(caa_manager *m);
