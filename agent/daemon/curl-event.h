/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libcurl's multi socket API driven by the daemon's one sd-event loop: curl's sockets become
 * I/O sources and its timeout one timer source, so HTTP transfers (the Docker Engine API, the
 * Alertmanager sink) run without threads and never block the loop. The owner adds easy
 * handles and is called back each time curl has returned to the loop, which is where it
 * collects finished transfers and may start or end others (curl's own callbacks may not).
 */
#pragma once

#include "ceredis.h"

#include <curl/curl.h>
#include <systemd/sd-event.h>

typedef struct CurlEvent CurlEvent;

/* Called after every socket or timeout action, outside curl's callbacks. */
typedef void (*curl_event_handler_t)(CurlEvent *ce, void *userdata);

int curl_event_new(sd_event *e, curl_event_handler_t on_ready, void *userdata, CurlEvent **ret);
/* Ends every transfer still added (the easy handles stay the caller's to clean up). */
void curl_event_free(CurlEvent *ce);
DEFINE_TRIVIAL_CLEANUP_FUNC(CurlEvent *, curl_event_free);

/* Start a transfer. Its sockets are opened O_CLOEXEC, and it never raises signals.
 * -EIO if curl refuses it. */
int curl_event_add(CurlEvent *ce, CURL *easy);
/* Stop a transfer (finished or not); a NULL ce or easy is a no-op. The handle stays the caller's. */
void curl_event_remove(CurlEvent *ce, CURL *easy);
/* The next finished transfer, from the on_ready handler: true and its handle and result, or
 * false when there is none left. The transfer stays added until curl_event_remove(). */
bool curl_event_next_done(CurlEvent *ce, CURL **ret_easy, CURLcode *ret_result);
