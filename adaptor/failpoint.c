/* Test-only failpoints (failpoint.h). Without CAA_FAILPOINTS nothing calls
 * this: the release daemon has no call site. */
#define LOG_COMPONENT "adaptor/failpoint"
#include "failpoint.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

void caa_failpoint_hit(const char *where, const char *what)
{
    const char *armed = getenv("CAA_FAILPOINT");
    if (!armed || !*armed)
        return;
    size_t n = strlen(where);
    if (strncmp(armed, where, n) != 0 || armed[n] != ':' || strcmp(armed + n + 1, what) != 0)
        return;
    log_warn("failpoint %s:%s: killing the daemon", where, what);
    raise(SIGKILL);
}
