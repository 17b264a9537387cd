/* A pod's boot data (boot-data.c): apf.json in the pod directory and the
 * cloud-config user-data handed to the provider. */
#pragma once

/* <pods-dir>/<id>/apf.json: what the VM's forwarder gets, kept on the worker
 * as upstream does (for operators, and to tear down a recovered pod's
 * network). Mode 0600: it holds the VM's TLS server key. */
#define CAA_APF_JSON_NAME "apf.json"
