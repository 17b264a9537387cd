/* LD_PRELOAD for the daemon of test_daemon_libvirt_stop_during_lease.py:
 * libvirt's DHCP lease lookup finds no interface, as before a guest asked
 * for a lease. The libvirt test driver makes up a lease for every running
 * domain on a network with an address, so without this no lease wait would
 * last. Interposes on the libvirt provider module's call (the preloaded
 * object comes first in the global symbol lookup). */
#include <stddef.h>

#include <libvirt/libvirt.h>

int virDomainInterfaceAddresses(virDomainPtr dom, virDomainInterfacePtr **ifaces, unsigned int source,
                                unsigned int flags)
{
    (void)dom;
    (void)source;
    (void)flags;
    *ifaces = NULL;
    return 0;
}
