/* mh_http.h - the probe endpoints, served by libmicrohttpd from memory.
 *
 * Handlers never touch a dependency: public bodies are rendered once per change of results
 * (mh_http_publish) and the same response object is queued for every probe; only the detailed
 * view for trusted clients is rendered per request, from a snapshot. Connection count, per-IP
 * count and idle time are bounded so held-open or trickling connections cannot starve probes. */
#ifndef MH_HTTP_H
#define MH_HTTP_H

#include "mh_registry.h"

struct mh_http;

/* Binds the [server] listen addresses (or adopts `fds`, n_fds > 0, e.g. from systemd socket
 * activation) and starts serving. `reg` is referenced. Returns NULL with a message in `err`. */
struct mh_http *mh_http_start(struct mh_registry *reg, const int *fds, int n_fds, char *err,
                              size_t errlen);

/* Makes `reg` the registry served (it may be the same one) and re-renders the public bodies.
 * Call after results changed (mh_registry_generation moved) or after a reload. */
void mh_http_publish(struct mh_http *http, struct mh_registry *reg);

/* Re-renders the public bodies of the registry being served if its generation moved. Safe from
 * any thread; calls are serialised so a slower, older render never replaces a newer one. */
void mh_http_refresh(struct mh_http *http);

/* Stops serving, closes the listeners and drops the registry reference. NULL is fine. */
void mh_http_stop(struct mh_http *http);

/* Opens one listening socket for `addr`, for main's use before daemons start. Returns the fd, or
 * -1 with errno. */
int mh_http_listen_socket(const struct sockaddr_storage *addr, socklen_t len);

#endif
