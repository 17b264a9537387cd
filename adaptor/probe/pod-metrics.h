/* Feeds caa_pods{state} from the pod lifecycle through a pod observer. */
#pragma once

#include "manager.h"

/* Register before caa_manager_start() to count the recovered pods too. */
void caa_pod_metrics_register(caa_manager *m);
