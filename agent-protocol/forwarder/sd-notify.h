/* systemd readiness notification (Type=notify units, as upstream's
 * agent-protocol-forwarder.service): sends `state` to $NOTIFY_SOCKET when it
 * is set. No libsystemd needed for one datagram. */
#pragma once

/* 1 sent, 0 no NOTIFY_SOCKET, negative errno on failure. */
int fwd_sd_notify(const char *state);
