/* The libvirt provider's ops table (registered in providers/registry.c). */
#pragma once

#include "provider.h"

extern const caa_provider_ops caa_libvirt_provider;
