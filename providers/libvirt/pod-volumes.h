/* How a pod's libvirt objects are named: its two volumes carry the instance
 * name, and its domain UUID is derived from that name. A volume left without
 * its domain (a daemon killed between the volume creates and the define, a
 * domain undefined by someone else) can so be traced back to its instance,
 * both by name and by the UUID the daemon kept. */
#pragma once

#include <libvirt/libvirt.h>

char *lv_root_volume_name(const char *instance_name);
char *lv_cidata_volume_name(const char *instance_name);

/* The instance name of one of a pod's volumes (malloc'd), or NULL when the
 * volume name is not "podvm-...-root.qcow2" / "podvm-...-cloudinit.iso". */
char *lv_volume_instance_name(const char *volume_name);

/* The domain UUID of an instance: a version-8 UUID from SHA-256 over a
 * fixed namespace and the name, lower-case. Returns 0, or -EIO when the
 * digest cannot be computed. */
int lv_instance_uuid(const char *instance_name, char out[VIR_UUID_STRING_BUFLEN]);
