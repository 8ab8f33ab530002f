/* http.c - HTTP/1.1 on libevent bufferevents: accept, parse one request at a
 * time per connection, hand it to the handler, write the reply when it comes
 * back (from any thread, through a mutex-protected queue and event_active).
 *
 * Owns: connection state machines, limits, draining. Why not evhttp: its
 * limit errors are HTML, it cannot cap connections and cannot drain; the
 * protocol subset a model server needs is small enough to own.
 */
#include "server/http.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

// ----------------------------------------------------------------------------
// Types

typedef enum conn_state {
    CONN_HEAD,    /* reading a request line and headers */
    CONN_BODY,    /* reading body_need bytes */
    CONN_WAITING, /* the handler has the request */
    CONN_CLOSING, /* writing the last reply, then close */
    CONN_LINGER,  /* reply written and write side shut: discard input until EOF */
} conn_state;

typedef struct conn {
    onyx_http *http;
    struct bufferevent *bev; /* NULL once the socket is closed */
    conn_state state;
    char remote[64];
    onyx_http_request *req; /* the request being read or handled */
    size_t body_need;
    size_t reserved;  /* bytes counted in http->inflight_bytes for this request */
    bool keep_alive;  /* of the current request */
    bool eof;         /* the client shut its write side */
    size_t discarded; /* bytes thrown away while lingering */
    struct conn *prev, *next;
} conn;

typedef struct reply {
    onyx_http_request *req;
    int status;
    char content_type[64];
    char *extra; /* malloc'ed header lines or NULL */
    struct evbuffer *body;
    struct reply *next;
} reply;

struct onyx_http {
    struct event_base *base;
    struct evconnlistener *listener;
    struct event *wake; /* activated by onyx_http_respond from any thread */
    onyx_http_limits lim;
    onyx_http_handler handler;
    onyx_http_access_fn access;
    void *user;
    int port;
    conn *conns; /* list of open (or waiting) connections */
    atomic_int_least64_t n_conns, in_flight;
    atomic_int_least64_t inflight_bytes; /* Content-Length of requests being read or handled */
    uint64_t seq;
    bool draining;
    void (*on_drained)(void *);
    void *drained_user;
    pthread_mutex_t mu; /* guards the reply queue */
    reply *head, *tail;
};

int64_t onyx_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static const char *status_text(int status) {
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 411:
        return "Length Required";
    case 413:
        return "Payload Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 422:
        return "Unprocessable Entity";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Unknown";
    }
}

// ----------------------------------------------------------------------------
// JSON string quoting (shared with the protocol code)

void onyx_json_quote(struct evbuffer *b, const char *s, size_t len) {
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    evbuffer_add(b, "\"", 1);
    size_t i = 0, run = 0;
    while (i < len) {
        unsigned char c = p[i];
        size_t n = 0; /* length of a valid UTF-8 sequence starting here */
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            run++;
            i++;
            continue;
        }
        if (run) evbuffer_add(b, p + i - run, run), run = 0;
        if (c < 0x80) {
            char esc[8];
            if (c == '"' || c == '\\') {
                esc[0] = '\\', esc[1] = (char)c;
                evbuffer_add(b, esc, 2);
            } else if (c == '\n') {
                evbuffer_add(b, "\\n", 2);
            } else if (c == '\t') {
                evbuffer_add(b, "\\t", 2);
            } else if (c == '\r') {
                evbuffer_add(b, "\\r", 2);
            } else {
                memcpy(esc, "\\u00", 4);
                esc[4] = hex[c >> 4], esc[5] = hex[c & 15];
                evbuffer_add(b, esc, 6);
            }
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF)
            n = 2;
        else if (c >= 0xE0 && c <= 0xEF)
            n = 3;
        else if (c >= 0xF0 && c <= 0xF4)
            n = 4;
        bool ok = n > 0 && i + n <= len;
        for (size_t k = 1; ok && k < n; k++)
            ok = (p[i + k] & 0xC0) == 0x80;
        if (ok && n == 3) {
            ok = !(c == 0xE0 && p[i + 1] < 0xA0) && !(c == 0xED && p[i + 1] >= 0xA0);
        }
        if (ok && n == 4) ok = !(c == 0xF0 && p[i + 1] < 0x90) && !(c == 0xF4 && p[i + 1] >= 0x90);
        if (ok) {
            evbuffer_add(b, p + i, n);
            i += n;
        } else {
            evbuffer_add(b, "\xEF\xBF\xBD", 3);
            i++;
        }
    }
    if (run) evbuffer_add(b, p + i - run, run);
    evbuffer_add(b, "\"", 1);
}

// ----------------------------------------------------------------------------
// Requests

static void request_free(onyx_http_request *r) {
    if (!r) return;
    for (int i = 0; i < r->n_headers; i++)
        free(r->headers[i].name);
    free(r->headers);
    free(r->path);
    free(r->query);
    free(r->body);
    free(r);
}

const char *onyx_http_header_get(const onyx_http_request *req, const char *name) {
    for (int i = 0; i < req->n_headers; i++)
        if (strcasecmp(req->headers[i].name, name) == 0) return req->headers[i].value;
    return NULL;
}

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Percent-decodes [s, s+n) into a new string; NULL on a bad escape or %00. */
static char *percent_decode(const char *s, size_t n) {
    char *out = malloc(n + 1), *o = out;
    if (!out) return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            int hi = i + 2 < n ? hexval((unsigned char)s[i + 1]) : -1;
            int lo = i + 2 < n ? hexval((unsigned char)s[i + 2]) : -1;
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                free(out);
                return NULL;
            }
            *o++ = (char)(hi * 16 + lo);
            i += 2;
        } else {
            *o++ = s[i];
        }
    }
    *o = 0;
    return out;
}

// ----------------------------------------------------------------------------
// Connections

/* Returns the body bytes this connection's request holds to the budget. */
static void unreserve(conn *c) {
    if (c->reserved) atomic_fetch_sub(&c->http->inflight_bytes, (int64_t)c->reserved);
    c->reserved = 0;
}

static void conn_read_cb(struct bufferevent *bev, void *arg);
static void conn_event_cb(struct bufferevent *bev, short what, void *arg);
static void conn_write_done_cb(struct bufferevent *bev, void *arg);
static void close_after_write(conn *c);

static void maybe_drained(onyx_http *h) {
    if (h->draining && !h->conns && h->on_drained) {
        void (*fn)(void *) = h->on_drained;
        h->on_drained = NULL;
        fn(h->drained_user);
    }
}

/* Frees a connection that has no request in the handler's hands. */
static void conn_free(conn *c) {
    onyx_http *h = c->http;
    unreserve(c);
    if (c->bev) bufferevent_free(c->bev);
    request_free(c->req);
    if (c->prev)
        c->prev->next = c->next;
    else
        h->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    atomic_fetch_sub(&h->n_conns, 1);
    free(c);
    maybe_drained(h);
}

/* Closes the socket. A connection whose request is with the handler stays
 * allocated until the reply arrives (and is then discarded). */
static void conn_close(conn *c) {
    if (c->state == CONN_WAITING) {
        if (c->bev) bufferevent_free(c->bev);
        c->bev = NULL;
        return;
    }
    conn_free(c);
}

static void set_read_timeout(conn *c, bool on) {
    struct timeval tv = {c->http->lim.idle_timeout_s, 0};
    struct timeval wtv = {c->http->lim.idle_timeout_s, 0};
    bufferevent_set_timeouts(c->bev, on ? &tv : NULL, &wtv);
}

/* Writes a complete reply on the event thread. */
static void write_reply(conn *c, int status, const char *ctype, const char *extra,
                        struct evbuffer *body, bool keep_alive, bool head) {
    struct evbuffer *out = bufferevent_get_output(c->bev);
    size_t blen = body ? evbuffer_get_length(body) : 0;
    evbuffer_add_printf(out,
                        "HTTP/1.1 %d %s\r\nServer: onyx\r\nContent-Length: %zu\r\n"
                        "Connection: %s\r\n",
                        status, status_text(status), blen, keep_alive ? "keep-alive" : "close");
    if (ctype && *ctype) evbuffer_add_printf(out, "Content-Type: %s\r\n", ctype);
    if (extra) evbuffer_add(out, extra, strlen(extra));
    evbuffer_add(out, "\r\n", 2);
    if (body && !head) evbuffer_add_buffer(out, body); /* HEAD: the length, no body */
}

/* An error produced by the HTTP layer itself, before any handler saw the
 * request: always closes the connection (the stream position is lost). */
static void fail_conn(conn *c, int status, const char *msg) {
    struct evbuffer *b = evbuffer_new();
    if (b) {
        evbuffer_add(b, "{\"error\":", 9);
        onyx_json_quote(b, msg, strlen(msg));
        evbuffer_add(b, "}", 1);
    }
    request_free(c->req);
    c->req = NULL;
    unreserve(c);
    write_reply(c, status, "application/json", NULL, b, false, false);
    if (b) evbuffer_free(b);
    if (c->http->access) {
        onyx_http_request r;
        memset(&r, 0, sizeof r);
        strcpy(r.method, "-");
        snprintf(r.remote, sizeof r.remote, "%s", c->remote);
        snprintf(r.log_error, sizeof r.log_error, "%s", msg);
        r.path = (char *)"-";
        r.start_ns = onyx_now_ns();
        c->http->access(c->http->user, &r, status, 0, 0);
    }
    close_after_write(c);
}

/* Lingering close, as nginx does: after the last reply the write side is
 * shut and input is read and dropped for a while, so a client still sending
 * a body the server refused reads the answer instead of a reset. */
static void linger_read_cb(struct bufferevent *bev, void *arg) {
    conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    c->discarded += evbuffer_get_length(in);
    evbuffer_drain(in, evbuffer_get_length(in));
    if (c->discarded > ((size_t)256 << 20)) conn_free(c);
}

static void conn_write_done_cb(struct bufferevent *bev, void *arg) {
    conn *c = arg;
    if (c->state != CONN_CLOSING || evbuffer_get_length(bufferevent_get_output(bev)) != 0) return;
    if (c->eof) {
        conn_free(c);
        return;
    }
    c->state = CONN_LINGER;
    shutdown(bufferevent_getfd(bev), SHUT_WR);
    struct timeval tv = {2, 0};
    bufferevent_set_timeouts(bev, &tv, NULL);
    bufferevent_setwatermark(bev, EV_READ, 0, 0);
    bufferevent_setcb(bev, linger_read_cb, NULL, conn_event_cb, c);
    bufferevent_enable(bev, EV_READ);
}

/* Ends the connection after what is queued for writing. */
static void close_after_write(conn *c) {
    c->state = CONN_CLOSING;
    bufferevent_disable(c->bev, EV_READ);
    bufferevent_setcb(c->bev, NULL, conn_write_done_cb, conn_event_cb, c);
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) conn_write_done_cb(c->bev, c);
}

static void conn_process(conn *c);

static void conn_event_cb(struct bufferevent *bev, short what, void *arg) {
    (void)bev;
    conn *c = arg;
    if ((what & BEV_EVENT_EOF) && (what & BEV_EVENT_READING) && !(what & BEV_EVENT_ERROR) &&
        c->state != CONN_LINGER && c->state != CONN_CLOSING) {
        /* Half-close: requests already received are still answered. */
        c->eof = true;
        bufferevent_disable(c->bev, EV_READ);
        if (c->state == CONN_WAITING) return;
        conn_process(c);
        if (c->bev && (c->state == CONN_HEAD || c->state == CONN_BODY)) conn_close(c);
        return;
    }
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) conn_close(c);
}

/* Whether the comma-separated header value `v` lists `token` (any case). */
static bool has_token(const char *v, const char *token) {
    size_t n = strlen(token);
    while (*v) {
        while (*v == ' ' || *v == ',' || *v == '\t')
            v++;
        const char *e = v;
        while (*e && *e != ',')
            e++;
        const char *t = e;
        while (t > v && (t[-1] == ' ' || t[-1] == '\t'))
            t--;
        if ((size_t)(t - v) == n && strncasecmp(v, token, n) == 0) return true;
        v = e;
    }
    return false;
}

/* Parses the head in `buf` (NUL-terminated, CRLFs included). Returns 0, or an
 * HTTP status with *msg set. */
static int parse_head(conn *c, char *buf, const char **msg) {
    onyx_http_request *r = calloc(1, sizeof *r);
    if (!r) return *msg = "out of memory", 503;
    c->req = r;
    snprintf(r->remote, sizeof r->remote, "%s", c->remote);
    char *line_end = strstr(buf, "\r\n");
    if (!line_end) return *msg = "malformed request line", 400;
    *line_end = 0;
    char *sp1 = strchr(buf, ' ');
    char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (!sp1 || !sp2 || (size_t)(sp1 - buf) >= sizeof r->method || sp1 == buf)
        return *msg = "malformed request line", 400;
    memcpy(r->method, buf, (size_t)(sp1 - buf));
    for (char *m = r->method; *m; m++)
        if (!isupper((unsigned char)*m)) return *msg = "malformed request method", 400;
    const char *ver = sp2 + 1;
    bool http10;
    if (strcmp(ver, "HTTP/1.1") == 0)
        http10 = false;
    else if (strcmp(ver, "HTTP/1.0") == 0)
        http10 = true;
    else if (strncmp(ver, "HTTP/", 5) == 0)
        return *msg = "unsupported HTTP version (HTTP/1.0 and 1.1 are served)", 505;
    else
        return *msg = "malformed request line", 400;
    char *target = sp1 + 1;
    *sp2 = 0;
    if (*target != '/') return *msg = "request target must be an absolute path", 400;
    char *q = strchr(target, '?');
    size_t plen = q ? (size_t)(q - target) : strlen(target);
    r->path = percent_decode(target, plen);
    r->query = strdup(q ? q + 1 : "");
    if (!r->path) return *msg = "malformed percent-encoding in the request path", 400;
    if (!r->query) return *msg = "out of memory", 503;

    /* Header lines. */
    int cap = 16;
    r->headers = malloc((size_t)cap * sizeof *r->headers);
    if (!r->headers) return *msg = "out of memory", 503;
    char *p = line_end + 2;
    bool has_len = false, chunked = false, close = false, keep = false;
    uint64_t len = 0;
    while (*p && !(p[0] == '\r' && p[1] == '\n')) {
        char *e = strstr(p, "\r\n");
        if (!e) return *msg = "malformed header line", 400;
        *e = 0;
        char *colon = strchr(p, ':');
        if (!colon || colon == p) return *msg = "malformed header line", 400;
        for (char *k = p; k < colon; k++)
            if (*k == ' ' || *k == '\t') return *msg = "malformed header name", 400;
        *colon = 0;
        char *v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        char *ve = v + strlen(v);
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            *--ve = 0;
        if (r->n_headers == cap) {
            if (cap > 512) return *msg = "too many header fields", 431;
            cap *= 2;
            onyx_http_header *nh = realloc(r->headers, (size_t)cap * sizeof *nh);
            if (!nh) return *msg = "out of memory", 503;
            r->headers = nh;
        }
        size_t nl = strlen(p), vl = strlen(v);
        char *kv = malloc(nl + vl + 2);
        if (!kv) return *msg = "out of memory", 503;
        memcpy(kv, p, nl + 1);
        memcpy(kv + nl + 1, v, vl + 1);
        r->headers[r->n_headers].name = kv;
        r->headers[r->n_headers].value = kv + nl + 1;
        r->n_headers++;
        if (strcasecmp(p, "Content-Length") == 0) {
            if (!*v) return *msg = "malformed Content-Length", 400;
            uint64_t n = 0;
            for (const char *d = v; *d; d++) {
                if (!isdigit((unsigned char)*d)) return *msg = "malformed Content-Length", 400;
                if (n > (UINT64_MAX - 9) / 10) return *msg = "Content-Length too large", 413;
                n = n * 10 + (uint64_t)(*d - '0');
            }
            if (has_len && n != len) return *msg = "conflicting Content-Length headers", 400;
            has_len = true;
            len = n;
        } else if (strcasecmp(p, "Transfer-Encoding") == 0) {
            if (strcasecmp(v, "identity") != 0) chunked = true;
        } else if (strcasecmp(p, "Connection") == 0) {
            if (has_token(v, "close")) close = true;
            if (has_token(v, "keep-alive")) keep = true;
        }
        p = e + 2;
    }
    if (chunked)
        return *msg = "chunked request bodies are not supported: send a Content-Length", 411;
    if (len > c->http->lim.max_body_bytes)
        return *msg = "request body larger than the server's limit (--max-body-mb)", 413;
    size_t cap_all = c->http->lim.max_inflight_bytes;
    if (cap_all && len > 0) {
        int64_t now = atomic_fetch_add(&c->http->inflight_bytes, (int64_t)len) + (int64_t)len;
        c->reserved = (size_t)len;
        if ((uint64_t)now > cap_all)
            return *msg = "server busy: too much request data in flight (--max-inflight-mb); "
                          "retry in a moment",
                   503;
    }
    c->keep_alive = http10 ? (keep && !close) : !close;
    c->body_need = (size_t)len;
    return 0;
}

static void dispatch(conn *c) {
    onyx_http *h = c->http;
    onyx_http_request *r = c->req;
    r->conn_ = c;
    r->seq = ++h->seq;
    c->state = CONN_WAITING;
    set_read_timeout(c, false);
    atomic_fetch_add(&h->in_flight, 1);
    if (h->draining) {
        c->keep_alive = false;
        onyx_http_respond_error(r, 503, "server is shutting down");
        return;
    }
    h->handler(h->user, r);
}

/* Advances the state machine over whatever input is buffered. */
static void conn_process(conn *c) {
    onyx_http *h = c->http;
    while (c->bev && (c->state == CONN_HEAD || c->state == CONN_BODY)) {
        struct evbuffer *in = bufferevent_get_input(c->bev);
        if (c->state == CONN_HEAD) {
            /* Leading empty lines between pipelined requests are allowed. */
            for (;;) {
                unsigned char two[2];
                ev_ssize_t got = evbuffer_copyout(in, two, 2);
                if (got >= 1 && two[0] == '\n')
                    evbuffer_drain(in, 1);
                else if (got == 2 && two[0] == '\r' && two[1] == '\n')
                    evbuffer_drain(in, 2);
                else
                    break;
            }
            struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
            if (end.pos < 0) {
                if (evbuffer_get_length(in) > h->lim.max_header_bytes)
                    fail_conn(c, 431, "request head larger than the server's limit");
                return;
            }
            size_t hlen = (size_t)end.pos + 4;
            if (hlen > h->lim.max_header_bytes) {
                fail_conn(c, 431, "request head larger than the server's limit");
                return;
            }
            char *buf = malloc(hlen + 1);
            if (!buf) {
                fail_conn(c, 503, "out of memory");
                return;
            }
            evbuffer_remove(in, buf, hlen);
            buf[hlen] = 0;
            const char *msg = NULL;
            int st = parse_head(c, buf, &msg);
            free(buf);
            if (st) {
                fail_conn(c, st, msg);
                return;
            }
            c->req->start_ns = onyx_now_ns();
            const char *expect = onyx_http_header_get(c->req, "Expect");
            if (expect && strcasecmp(expect, "100-continue") == 0 && c->body_need > 0 &&
                evbuffer_get_length(in) == 0)
                bufferevent_write(c->bev, "HTTP/1.1 100 Continue\r\n\r\n", 25);
            c->state = CONN_BODY;
            bufferevent_setwatermark(c->bev, EV_READ, 0, 0);
        }
        if (c->state == CONN_BODY) {
            if (evbuffer_get_length(in) < c->body_need) return;
            onyx_http_request *r = c->req;
            r->body = malloc(c->body_need + 1);
            if (!r->body) {
                fail_conn(c, 503, "out of memory for the request body");
                return;
            }
            evbuffer_remove(in, r->body, c->body_need);
            r->body[c->body_need] = 0;
            r->body_len = c->body_need;
            /* Pipelined bytes wait in the input buffer (bounded) until the reply. */
            bufferevent_setwatermark(c->bev, EV_READ, 0, h->lim.max_header_bytes);
            dispatch(c);
            return;
        }
    }
}

static void conn_read_cb(struct bufferevent *bev, void *arg) {
    (void)bev;
    conn_process(arg);
}

// ----------------------------------------------------------------------------
// Replies from any thread

void onyx_http_respond(onyx_http_request *req, int status, const char *content_type,
                       const char *extra_headers, struct evbuffer *body) {
    conn *c = req->conn_;
    onyx_http *h = c->http;
    reply *rp = calloc(1, sizeof *rp);
    if (!rp) abort(); /* a reply that cannot be queued would hang the client forever */
    rp->req = req;
    rp->status = status;
    snprintf(rp->content_type, sizeof rp->content_type, "%s", content_type ? content_type : "");
    rp->extra = extra_headers ? strdup(extra_headers) : NULL;
    rp->body = body;
    pthread_mutex_lock(&h->mu);
    if (h->tail)
        h->tail->next = rp;
    else
        h->head = rp;
    h->tail = rp;
    pthread_mutex_unlock(&h->mu);
    event_active(h->wake, EV_READ, 0);
}

void onyx_http_respond_error(onyx_http_request *req, int status, const char *message) {
    struct evbuffer *b = evbuffer_new();
    if (b) {
        evbuffer_add(b, "{\"error\":", 9);
        onyx_json_quote(b, message, strlen(message));
        evbuffer_add(b, "}", 1);
    }
    snprintf(req->log_error, sizeof req->log_error, "%s", message);
    onyx_http_respond(req, status, "application/json", NULL, b);
}

static void deliver(onyx_http *h, reply *rp) {
    onyx_http_request *req = rp->req;
    conn *c = req->conn_;
    size_t blen = rp->body ? evbuffer_get_length(rp->body) : 0;
    if (h->access) h->access(h->user, req, rp->status, blen, onyx_now_ns() - req->start_ns);
    atomic_fetch_sub(&h->in_flight, 1);
    unreserve(c);
    c->req = NULL;
    if (!c->bev) { /* the client went away meanwhile */
        c->state = CONN_HEAD;
        conn_free(c);
    } else {
        bool keep = c->keep_alive && !h->draining;
        write_reply(c, rp->status, rp->content_type, rp->extra, rp->body, keep,
                    strcmp(req->method, "HEAD") == 0);
        if (keep) {
            c->state = CONN_HEAD;
            if (!c->eof) {
                set_read_timeout(c, true);
                bufferevent_setwatermark(c->bev, EV_READ, 0, h->lim.max_header_bytes + 1);
            }
            conn_process(c);
            /* A client that half-closed gets its pipelined answers, then EOF. */
            if (c->bev && c->eof && c->state != CONN_WAITING && c->state != CONN_CLOSING &&
                c->state != CONN_LINGER)
                close_after_write(c);
        } else {
            close_after_write(c);
        }
    }
    request_free(req);
    if (rp->body) evbuffer_free(rp->body);
    free(rp->extra);
    free(rp);
}

static void wake_cb(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what;
    onyx_http *h = arg;
    pthread_mutex_lock(&h->mu);
    reply *list = h->head;
    h->head = h->tail = NULL;
    pthread_mutex_unlock(&h->mu);
    while (list) {
        reply *next = list->next;
        deliver(h, list);
        list = next;
    }
}

// ----------------------------------------------------------------------------
// Accepting

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
                      void *arg) {
    (void)l;
    onyx_http *h = arg;
    char host[INET6_ADDRSTRLEN] = "?", port[8] = "?";
    getnameinfo(sa, (socklen_t)salen, host, sizeof host, port, sizeof port,
                NI_NUMERICHOST | NI_NUMERICSERV);
    bool over = h->draining || atomic_load(&h->n_conns) >= h->lim.max_connections;
    if (over && atomic_load(&h->n_conns) >= (int64_t)h->lim.max_connections + 64) {
        evutil_closesocket(fd); /* refusals themselves are bounded */
        return;
    }
    conn *c = calloc(1, sizeof *c);
    struct bufferevent *bev = c ? bufferevent_socket_new(h->base, fd, BEV_OPT_CLOSE_ON_FREE) : NULL;
    if (!bev) {
        free(c);
        evutil_closesocket(fd);
        return;
    }
    c->http = h;
    c->bev = bev;
    c->state = CONN_HEAD;
    snprintf(c->remote, sizeof c->remote, "%s:%s", host, port);
    c->next = h->conns;
    if (h->conns) h->conns->prev = c;
    h->conns = c;
    atomic_fetch_add(&h->n_conns, 1);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    bufferevent_setcb(bev, conn_read_cb, NULL, conn_event_cb, c);
    bufferevent_setwatermark(bev, EV_READ, 0, h->lim.max_header_bytes + 1);
    set_read_timeout(c, true);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    if (over)
        fail_conn(c, 503,
                  h->draining ? "server is shutting down"
                              : "too many open connections (--max-connections); retry in a moment");
}

onyx_http *onyx_http_new(struct event_base *base, const char *host, int port,
                         const onyx_http_limits *limits, onyx_http_handler handler,
                         onyx_http_access_fn access, void *user, char *err, size_t cap) {
    onyx_http *h = calloc(1, sizeof *h);
    struct addrinfo *ai = NULL;
    if (!h) {
        snprintf(err, cap, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&h->mu, NULL);
    h->base = base;
    h->lim = *limits;
    h->handler = handler;
    h->access = access;
    h->user = user;
    h->wake = event_new(base, -1, 0, wake_cb, h);
    if (!h->wake) {
        snprintf(err, cap, "cannot create the reply event");
        goto fail;
    }
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    int gai = getaddrinfo(host, portstr, &hints, &ai);
    if (gai != 0) {
        snprintf(err, cap, "cannot resolve --host '%s': %s", host, gai_strerror(gai));
        goto fail;
    }
    h->listener =
        evconnlistener_new_bind(base, accept_cb, h, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 1024,
                                ai->ai_addr, (int)ai->ai_addrlen);
    if (!h->listener) {
        snprintf(err, cap, "cannot listen on %s:%d: %s", host, port, strerror(errno));
        goto fail;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    evutil_socket_t lfd = evconnlistener_get_fd(h->listener);
    if (getsockname(lfd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET)
            h->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        else if (ss.ss_family == AF_INET6)
            h->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    freeaddrinfo(ai);
    return h;
fail:
    if (ai) freeaddrinfo(ai);
    onyx_http_free(h);
    return NULL;
}

int onyx_http_port(const onyx_http *h) {
    return h->port;
}

int64_t onyx_http_in_flight(const onyx_http *h) {
    return atomic_load(&((onyx_http *)h)->in_flight);
}
int64_t onyx_http_connections(const onyx_http *h) {
    return atomic_load(&((onyx_http *)h)->n_conns);
}

void onyx_http_drain(onyx_http *h, void (*on_drained)(void *user), void *user) {
    h->draining = true;
    h->on_drained = on_drained;
    h->drained_user = user;
    if (h->listener) {
        evconnlistener_free(h->listener);
        h->listener = NULL;
    }
    /* Idle keep-alive connections close now; the others close after their
     * reply (deliver() stops keeping alive while draining). */
    conn *c = h->conns;
    while (c) {
        conn *next = c->next;
        if (c->state == CONN_HEAD && c->bev &&
            evbuffer_get_length(bufferevent_get_input(c->bev)) == 0 && !c->req)
            conn_free(c);
        c = next;
    }
    maybe_drained(h);
}

void onyx_http_free(onyx_http *h) {
    if (!h) return;
    if (h->listener) evconnlistener_free(h->listener);
    while (h->conns) {
        conn *c = h->conns;
        if (c->state == CONN_WAITING) { /* the handler still owns the request */
            h->conns = c->next;
            if (c->bev) bufferevent_free(c->bev);
            continue;
        }
        conn_free(c);
    }
    reply *rp = h->head;
    while (rp) {
        reply *next = rp->next;
        conn *c = rp->req->conn_;
        request_free(rp->req);
        if (rp->body) evbuffer_free(rp->body);
        free(rp->extra);
        free(rp);
        free(c);
        rp = next;
    }
    if (h->wake) event_free(h->wake);
    pthread_mutex_destroy(&h->mu);
    free(h);
}
