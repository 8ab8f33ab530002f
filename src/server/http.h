/* http.h - a small HTTP/1.1 server on libevent bufferevents: keep-alive,
 * pipelining (one request at a time per connection), Expect: 100-continue,
 * limits (header size, body size, connections, idle time) answered with JSON
 * errors, and replies that may be produced on any thread.
 *
 * Owns: sockets, parsing, connection lifetime, graceful draining. Does not
 * own: routing or any protocol above HTTP (server.c and friends).
 */
#ifndef ONYX_SERVER_HTTP_H
#define ONYX_SERVER_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct evbuffer;

typedef struct onyx_http onyx_http;

typedef struct onyx_http_header {
    char *name;  /* as sent */
    char *value; /* leading and trailing blanks removed */
} onyx_http_header;

/* One parsed request. Created by the HTTP layer on the event thread and
 * handed to the handler, which must answer it exactly once with
 * onyx_http_respond (from any thread); the request is freed after that. */
typedef struct onyx_http_request {
    char method[16];
    char *path;  /* percent-decoded path without the query */
    char *query; /* the raw text after '?', or "" */
    int n_headers;
    onyx_http_header *headers; /* (n_headers) */
    uint8_t *body;             /* (body_len) malloc'ed, NUL-terminated past the end */
    size_t body_len;
    int64_t start_ns;    /* monotonic clock when the request head was complete */
    char remote[64];     /* "ip:port" of the client */
    uint64_t seq;        /* request number since start, for logs */
    char log_model[96];  /* the handler may name the model for the access log */
    char log_error[160]; /* and the error it answered with */
    void *conn_;         /* private to http.c */
} onyx_http_request;

/* Called on the event thread for every complete request. */
typedef void (*onyx_http_handler)(void *user, onyx_http_request *req);
/* Called on the event thread when a reply has been queued for writing. */
typedef void (*onyx_http_access_fn)(void *user, const onyx_http_request *req, int status,
                                    size_t bytes_out, int64_t duration_ns);

typedef struct onyx_http_limits {
    size_t max_header_bytes;   /* request line + headers (default 64 KiB) */
    size_t max_body_bytes;     /* Content-Length above this gets 413 */
    int max_connections;       /* beyond this, new connections get 503 and are closed */
    int idle_timeout_s;        /* keep-alive idle and slow-read timeout */
    size_t max_inflight_bytes; /* bodies of requests not yet answered, summed; 0: no limit */
} onyx_http_limits;

/* Creates the server on `base` (which must have been created after
 * evthread_use_pthreads) and binds host:port. NULL on failure with the reason
 * in `err` (cap bytes). Free with onyx_http_free after the loop ended. */
onyx_http *onyx_http_new(struct event_base *base, const char *host, int port,
                         const onyx_http_limits *limits, onyx_http_handler handler,
                         onyx_http_access_fn access, void *user, char *err, size_t cap);
void onyx_http_free(onyx_http *h);

/* The port actually bound (useful with port 0). */
int onyx_http_port(const onyx_http *h);

/* Answers `req`: takes ownership of `body` (may be NULL for an empty body) and
 * of req. `extra_headers` is NULL or complete "Name: value\r\n" lines. Safe
 * from any thread; the bytes are written by the event thread. */
void onyx_http_respond(onyx_http_request *req, int status, const char *content_type,
                       const char *extra_headers, struct evbuffer *body);
/* Answers with {"error": message} and the given status. */
void onyx_http_respond_error(onyx_http_request *req, int status, const char *message);

/* The value of header `name` (case-insensitive), or NULL. */
const char *onyx_http_header_get(const onyx_http_request *req, const char *name);

/* Graceful stop: closes the listener and idle connections; requests already
 * received are still answered (with Connection: close), then their
 * connections close. `on_drained` runs on the event thread once no
 * connection is left. Event thread only. */
void onyx_http_drain(onyx_http *h, void (*on_drained)(void *user), void *user);

/* Requests received and not yet answered; open connections. Any thread. */
int64_t onyx_http_in_flight(const onyx_http *h);
int64_t onyx_http_connections(const onyx_http *h);

/* Monotonic clock in nanoseconds. */
int64_t onyx_now_ns(void);

/* Appends `s` to `b` as a JSON string literal (quotes included), escaping
 * what JSON requires and replacing invalid UTF-8 with U+FFFD. */
void onyx_json_quote(struct evbuffer *b, const char *s, size_t len);

#endif
