/*
 * Load generator for the chat benchmarks, in C: the fanout and rates
 * scenarios of bench/loadgen.py, with the same command line and the same
 * JSON output, for servers too fast for the Python generator to saturate.
 *
 *     gcc -O2 -Wall -Wextra -o bench/.build/loadgen bench/loadgen_c/loadgen.c
 *     bench/.build/loadgen fanout --port 8000 --clients 1000 --server-pid 1234
 *     bench/.build/loadgen rates --port 8000 --rates 10000,50000,100000
 *
 * One process, one epoll loop, plain WebSocket (--proto ws) only. Every
 * client is a non-blocking socket; incoming bytes are read 256 KiB at a time
 * and counted by walking frame headers. A sender's payloads are looked at
 * only for its own marker ("K<sender:03d>." in the client_id), which gives
 * the sequence number of an echo. Outgoing message frames are masked once
 * per sender; only the eight sequence digits are masked per send. Writes are
 * queued per client and flushed once per loop turn.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RECV_SIZE (1 << 18)
#define SEQ_DIGITS 8
#define MAX_EVENTS 1024
#define HEAD_MAX 16384

enum { CONNECTING, UPGRADING, OPENING, JOINING, READY, CLOSED };

enum { STARTED = 1, IN_WINDOW = 2 }; /* slot flags */

/* -- small helpers ------------------------------------------------------ */

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("loadgen: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p)
        die("out of memory");
    return p;
}

typedef struct {
    unsigned char *p;
    size_t len, cap;
} buf_t;

static void buf_reserve(buf_t *b, size_t extra)
{
    if (b->len + extra <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra)
        cap *= 2;
    b->p = xrealloc(b->p, cap);
    b->cap = cap;
}

static void buf_put(buf_t *b, const void *data, size_t n)
{
    buf_reserve(b, n);
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

/* Short formatted text (numbers, escapes) appended to b. */
static void buf_printf(buf_t *b, const char *fmt, ...)
{
    char text[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (n > 0)
        buf_put(b, text, (size_t)n < sizeof text ? (size_t)n : sizeof text - 1);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double process_time(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void random_bytes(void *out, size_t n)
{
    unsigned char *p = out;
    while (n) {
        ssize_t got = getrandom(p, n, 0);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            die("getrandom: %s", strerror(errno));
        }
        p += got;
        n -= (size_t)got;
    }
}

static const char *errname(int err)
{
    const char *name = strerrorname_np(err);
    static char other[32];
    if (name)
        return name;
    snprintf(other, sizeof other, "%d", err);
    return other;
}

/* Bytes of the first ``chars`` UTF-8 characters of p[0:n]. */
static size_t utf8_prefix(const unsigned char *p, size_t n, size_t chars)
{
    size_t i = 0, seen = 0;
    for (; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80) {
            if (seen == chars)
                break;
            seen++;
        }
    }
    return i;
}

/* -- frames ------------------------------------------------------------- */

/* One masked client frame (RFC 6455 5.2) appended to out. */
static void masked_frame(buf_t *out, int opcode, const unsigned char *payload,
                         size_t length, const unsigned char *key_or_null)
{
    unsigned char head[14], key[4];
    size_t h = 0;
    head[h++] = (unsigned char)(0x80 | opcode);
    if (length < 126) {
        head[h++] = (unsigned char)(0x80 | length);
    } else if (length < (1u << 16)) {
        head[h++] = 0x80 | 126;
        head[h++] = (unsigned char)(length >> 8);
        head[h++] = (unsigned char)length;
    } else {
        head[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            head[h++] = (unsigned char)((uint64_t)length >> (8 * i));
    }
    if (key_or_null)
        memcpy(key, key_or_null, 4);
    else
        random_bytes(key, 4);
    memcpy(head + h, key, 4);
    h += 4;
    buf_reserve(out, h + length);
    memcpy(out->p + out->len, head, h);
    unsigned char *dst = out->p + out->len + h;
    for (size_t i = 0; i < length; i++)
        dst[i] = payload[i] ^ key[i & 3];
    out->len += h + length;
}

/* A sender's message frame, masked once; only the digits change per send. */
typedef struct {
    buf_t frame;
    size_t digits_at; /* offset of the first sequence digit in frame */
    size_t payload_at;
    unsigned char key[4];
    char marker[16];
    size_t marker_len;
} maker_t;

static void maker_init(maker_t *m, int sender, size_t text_len)
{
    m->marker_len = (size_t)snprintf(m->marker, sizeof m->marker, "K%03d.", sender);
    buf_t payload = {0};
    const char *head = "{\"type\":\"message\",\"text\":\"";
    buf_put(&payload, head, strlen(head));
    buf_reserve(&payload, text_len);
    memset(payload.p + payload.len, 'x', text_len);
    payload.len += text_len;
    const char *mid = "\",\"client_id\":\"";
    buf_put(&payload, mid, strlen(mid));
    buf_put(&payload, m->marker, m->marker_len);
    size_t digits = payload.len;
    buf_put(&payload, "00000000", SEQ_DIGITS);
    buf_put(&payload, "\"}", 2);
    random_bytes(m->key, 4);
    memset(&m->frame, 0, sizeof m->frame);
    masked_frame(&m->frame, 0x1, payload.p, payload.len, m->key);
    m->payload_at = m->frame.len - payload.len;
    m->digits_at = m->payload_at + digits;
    free(payload.p);
}

/* -- clients ------------------------------------------------------------ */

typedef struct {
    double t;      /* send (or scheduled) time */
    unsigned char flags;
} slot_t;

typedef struct client {
    int index, fd, state, reading, dirty;
    uint32_t events; /* what epoll watches now */
    buf_t head;      /* the HTTP response during the upgrade */
    buf_t rest;      /* an incomplete frame */
    buf_t out;       /* bytes not sent yet, from out_at */
    size_t out_at;
    long long msgs, others, completed;
    maker_t *maker; /* senders only */
    slot_t *slots;  /* by sequence number */
    size_t nslots;
    long long seq, low; /* next to send; lowest maybe still flagged */
    double t_open, t_welcome;
    char close_code[128];
} client_t;

typedef struct {
    char *key;
    long long n;
} count_t;

typedef struct {
    count_t *items;
    size_t n;
} counter_t;

static void count(counter_t *c, const char *key)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->items[i].key, key) == 0) {
            c->items[i].n++;
            return;
        }
    c->items = xrealloc(c->items, (c->n + 1) * sizeof *c->items);
    c->items[c->n].key = strdup(key);
    c->items[c->n].n = 1;
    c->n++;
}

typedef struct {
    double when;
    unsigned long long order;
    int client;
} timer_item;

/* -- the generator ------------------------------------------------------ */

static struct {
    int port;
    int server_pid;
    const char *room;
    int ep;
    client_t **clients;
    size_t nclients, cclients;
    int *dirty;
    size_t ndirty, cdirty;
    long long opening, ready, open_fds;
    long long delivered, recvs;
    double last_rx;
    int closing;
    counter_t errors, closes, failures;
    char *error_samples[3];
    size_t nsamples;
    timer_item *timers;
    size_t ntimers, ctimers;
    unsigned long long timer_order;
    void (*on_echo)(client_t *, long long);
    void (*on_timer)(client_t *, double);
    double batch;
    int batch_events;
    unsigned char *rbuf;
    size_t rbuf_cap;
    long clock_ticks;
} G;

static void watch(client_t *c)
{
    if (c->state == CLOSED)
        return;
    uint32_t events = (c->reading ? EPOLLIN : 0) | (c->out.len > c->out_at ? EPOLLOUT : 0);
    if (events == c->events)
        return;
    struct epoll_event ev = {.events = events, .data.u32 = (uint32_t)c->index};
    if (epoll_ctl(G.ep, EPOLL_CTL_MOD, c->fd, &ev) == 0)
        c->events = events;
}

static void lost(client_t *c, const char *fmt, ...)
{
    if (c->state == CLOSED)
        return;
    int was_ready = c->state == READY;
    c->state = CLOSED;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->close_code, sizeof c->close_code, fmt, ap);
    va_end(ap);
    if (was_ready) {
        G.ready--;
        if (!G.closing)
            count(&G.closes, c->close_code);
    } else {
        G.opening--;
        count(&G.failures, c->close_code);
    }
    G.open_fds--;
    epoll_ctl(G.ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->out.p);
    memset(&c->out, 0, sizeof c->out);
    c->out_at = 0;
}

/* Queue bytes for a client; they go out at the end of the loop turn. */
static unsigned char *queue(client_t *c, size_t n)
{
    if (c->out_at && c->out_at == c->out.len)
        c->out.len = c->out_at = 0;
    buf_reserve(&c->out, n);
    unsigned char *p = c->out.p + c->out.len;
    c->out.len += n;
    if (!c->dirty && !(c->events & EPOLLOUT)) {
        c->dirty = 1;
        if (G.ndirty == G.cdirty) {
            G.cdirty = G.cdirty ? 2 * G.cdirty : 1024;
            G.dirty = xrealloc(G.dirty, G.cdirty * sizeof *G.dirty);
        }
        G.dirty[G.ndirty++] = c->index;
    }
    return p;
}

static void send_bytes(client_t *c, const void *data, size_t n)
{
    if (c->state == CLOSED)
        return;
    memcpy(queue(c, n), data, n);
}

static void send_pending(client_t *c)
{
    while (c->out_at < c->out.len) {
        ssize_t sent = send(c->fd, c->out.p + c->out_at, c->out.len - c->out_at, MSG_NOSIGNAL);
        if (sent < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            lost(c, "send: %s", errname(errno));
            return;
        }
        c->out_at += (size_t)sent;
    }
    if (c->out_at == c->out.len)
        c->out.len = c->out_at = 0;
    watch(c);
}

static void flush_dirty(void)
{
    for (size_t i = 0; i < G.ndirty; i++) {
        client_t *c = G.clients[G.dirty[i]];
        c->dirty = 0;
        if (c->state != CLOSED && c->state != CONNECTING && !(c->events & EPOLLOUT))
            send_pending(c);
    }
    G.ndirty = 0;
}

static slot_t *slot(client_t *c, long long seq)
{
    if ((size_t)seq >= c->nslots) {
        size_t n = c->nslots ? c->nslots : 1024;
        while (n <= (size_t)seq)
            n *= 2;
        c->slots = xrealloc(c->slots, n * sizeof *c->slots);
        memset(c->slots + c->nslots, 0, (n - c->nslots) * sizeof *c->slots);
        c->nslots = n;
    }
    return &c->slots[seq];
}

static void send_message(client_t *c, double at)
{
    maker_t *m = c->maker;
    slot_t *s = slot(c, c->seq);
    s->t = at;
    s->flags |= STARTED;
    if (c->state != CLOSED) {
        unsigned char *p = queue(c, m->frame.len);
        memcpy(p, m->frame.p, m->frame.len);
        unsigned long long v = (unsigned long long)c->seq;
        for (int i = SEQ_DIGITS - 1; i >= 0; i--) {
            size_t at_ = m->digits_at + (size_t)i;
            p[at_] = (unsigned char)('0' + v % 10) ^ m->key[(at_ - m->payload_at) & 3];
            v /= 10;
        }
    }
    c->seq++;
}

/* The sequence number of an echo, taken from the pending slot. */
static int pop_started(client_t *c, long long seq, double *sent)
{
    if (seq < 0 || (size_t)seq >= c->nslots || !(c->slots[seq].flags & STARTED))
        return 0;
    c->slots[seq].flags &= (unsigned char)~STARTED;
    *sent = c->slots[seq].t;
    return 1;
}

static void request(client_t *c)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    unsigned char raw[18] = {0};
    char key[25];
    random_bytes(raw, 16);
    for (int i = 0, o = 0; i < 18; i += 3) {
        unsigned v = (unsigned)raw[i] << 16 | (unsigned)raw[i + 1] << 8 | raw[i + 2];
        key[o++] = b64[v >> 18 & 63];
        key[o++] = b64[v >> 12 & 63];
        key[o++] = b64[v >> 6 & 63];
        key[o++] = b64[v & 63];
    }
    key[22] = key[23] = '=';
    key[24] = 0;
    char text[512];
    int n = snprintf(text, sizeof text,
                     "GET /ws?name=u%d&room=%s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                     "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
                     c->index, G.room, G.port, key);
    send_bytes(c, text, (size_t)n);
}

static void connected(client_t *c)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (err) {
        lost(c, "connect: %s", errname(err));
        return;
    }
    c->state = UPGRADING;
    request(c);
    send_pending(c);
}

static void welcomed(client_t *c)
{
    if (c->state == OPENING || c->state == JOINING) {
        c->state = READY;
        c->t_welcome = now();
        G.opening--;
        G.ready++;
    }
}

/* The value of "code" in an error frame, as loadgen.py keys its errors. */
static void note_error(const unsigned char *p, size_t n)
{
    char key[256];
    const unsigned char *end = p + n, *q = p;
    while (q < end && (*q == ' ' || *q == '\t' || *q == '\r' || *q == '\n'))
        q++;
    const unsigned char *code = q < end && *q == '{' ? memmem(p, n, "\"code\"", 6) : NULL;
    if (code) {
        q = code + 6;
        while (q < end && (*q == ' ' || *q == ':'))
            q++;
        size_t k = 0;
        if (q < end && *q == '"') {
            for (q++; q < end && *q != '"' && k < sizeof key - 1; q++)
                key[k++] = (char)*q;
        } else {
            for (; q < end && *q != ',' && *q != '}' && *q != ' ' && k < sizeof key - 1; q++)
                key[k++] = (char)*q;
        }
        key[k] = 0;
    } else if (q < end && *q == '{') {
        strcpy(key, "None");
    } else {
        size_t k = utf8_prefix(p, n, 40);
        if (k > sizeof key - 1)
            k = sizeof key - 1;
        memcpy(key, p, k);
        key[k] = 0;
    }
    count(&G.errors, key);
    if (G.nsamples < 3) {
        size_t k = utf8_prefix(p, n, 200);
        char *s = xrealloc(NULL, k + 1);
        memcpy(s, p, k);
        s[k] = 0;
        G.error_samples[G.nsamples++] = s;
    }
}

/* A frame that is not a chat message: pings, closes, welcome, errors. */
static void control(client_t *c, int opcode, const unsigned char *p, size_t n)
{
    if (opcode == 0x9) {
        buf_t pong = {0};
        masked_frame(&pong, 0xA, p, n, NULL);
        send_bytes(c, pong.p, pong.len);
        free(pong.p);
        return;
    }
    if (opcode == 0x8) {
        lost(c, "%d", n >= 2 ? (p[0] << 8 | p[1]) : 1005);
        return;
    }
    if (opcode != 0x1)
        return;
    c->others++;
    size_t head = n < 30 ? n : 30;
    if (c->state == JOINING && memmem(p, head, "\"welcome\"", 9))
        welcomed(c);
    else if (memmem(p, head, "\"history\"", 9))
        ; /* not used by these scenarios */
    else if (memmem(p, head, "\"error\"", 7))
        note_error(p, n);
}

static int is_message(const unsigned char *p, size_t n)
{
    static const char lead[] = "{\"type\":\"message\"";
    if (n >= sizeof lead - 1 && memcmp(p, lead, sizeof lead - 1) == 0)
        return 1;
    return memmem(p, n < 24 ? n : 24, "message\"", 8) != NULL;
}

/* Walk the frame headers in data: count message frames, hand own echoes to
 * the scenario and every other frame to control(); keep an incomplete tail. */
static void feed(client_t *c, const unsigned char *data, size_t size)
{
    size_t pos = 0;
    const maker_t *m = c->maker;
    while (size - pos >= 2) {
        uint64_t length = data[pos + 1] & 0x7F;
        size_t start;
        if (length < 126) {
            start = pos + 2;
        } else if (length == 126) {
            if (size - pos < 4)
                break;
            length = (uint64_t)data[pos + 2] << 8 | data[pos + 3];
            start = pos + 4;
        } else {
            if (size - pos < 10)
                break;
            length = 0;
            for (int i = 2; i < 10; i++)
                length = length << 8 | (uint64_t)data[pos + i];
            start = pos + 10;
        }
        if (data[pos + 1] & 0x80) /* servers never mask; skip the key anyway */
            start += 4;
        if (start > size || length > size - start)
            break;
        const unsigned char *p = data + start;
        size_t n = (size_t)length;
        int opcode = data[pos] & 0x0F;
        if (opcode == 0x1 && is_message(p, n)) {
            c->msgs++;
            G.delivered++;
            if (m) {
                const unsigned char *hit = memmem(p, n, m->marker, m->marker_len);
                if (hit) {
                    const unsigned char *d = hit + m->marker_len, *end = p + n;
                    long long seq = 0;
                    int digits = 0;
                    for (; d < end && *d >= '0' && *d <= '9' && digits < 18; d++, digits++)
                        seq = seq * 10 + (*d - '0');
                    if (digits)
                        G.on_echo(c, seq);
                }
            }
        } else {
            control(c, opcode, p, n);
            if (c->state == CLOSED)
                return;
        }
        pos = start + n;
    }
    c->rest.len = 0;
    if (pos < size)
        buf_put(&c->rest, data + pos, size - pos);
}

static void upgrade(client_t *c, const unsigned char *data, size_t n)
{
    buf_put(&c->head, data, n);
    const unsigned char *end = memmem(c->head.p, c->head.len, "\r\n\r\n", 4);
    if (!end) {
        if (c->head.len > HEAD_MAX)
            lost(c, "upgrade: oversized response");
        return;
    }
    const unsigned char *eol = memmem(c->head.p, c->head.len, "\r\n", 2);
    size_t status = (size_t)(eol - c->head.p);
    if (status < 12 || memcmp(c->head.p, "HTTP/1.1 101", 12) != 0) {
        size_t k = utf8_prefix(c->head.p, status, 60);
        lost(c, "upgrade: %.*s", (int)k, (const char *)c->head.p);
        return;
    }
    c->state = JOINING;
    size_t body = (size_t)(end - c->head.p) + 4;
    if (body < c->head.len)
        feed(c, c->head.p + body, c->head.len - body);
    free(c->head.p);
    memset(&c->head, 0, sizeof c->head);
}

static void on_readable(client_t *c)
{
    size_t keep = c->rest.len;
    if (G.rbuf_cap < keep + RECV_SIZE) {
        G.rbuf_cap = keep + RECV_SIZE;
        G.rbuf = xrealloc(G.rbuf, G.rbuf_cap);
    }
    if (keep && c->state >= OPENING)
        memcpy(G.rbuf, c->rest.p, keep);
    else
        keep = 0;
    ssize_t got;
    do
        got = recv(c->fd, G.rbuf + keep, RECV_SIZE, 0);
    while (got < 0 && errno == EINTR);
    if (got < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            lost(c, "recv: %s", errname(errno));
        return;
    }
    G.recvs++;
    if (got == 0)
        lost(c, "eof");
    else if (c->state >= OPENING)
        feed(c, G.rbuf, keep + (size_t)got);
    else if (c->state == UPGRADING)
        upgrade(c, G.rbuf, (size_t)got);
}

static client_t *connect_one(void)
{
    client_t *c = xrealloc(NULL, sizeof *c);
    memset(c, 0, sizeof *c);
    if (G.nclients == G.cclients) {
        G.cclients = G.cclients ? 2 * G.cclients : 1024;
        G.clients = xrealloc(G.clients, G.cclients * sizeof *G.clients);
    }
    c->index = (int)G.nclients;
    G.clients[G.nclients++] = c;
    c->state = CONNECTING;
    c->reading = 1;
    c->t_open = now();
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        die("socket: %s", strerror(errno));
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    G.opening++;
    G.open_fds++;
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)G.port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int rc = connect(c->fd, (struct sockaddr *)&addr, sizeof addr);
    int err = rc == 0 ? 0 : errno;
    c->events = (err == 0 || err == EINPROGRESS) ? EPOLLOUT : EPOLLIN;
    struct epoll_event ev = {.events = c->events, .data.u32 = (uint32_t)c->index};
    if (epoll_ctl(G.ep, EPOLL_CTL_ADD, c->fd, &ev) < 0)
        die("epoll_ctl: %s", strerror(errno));
    if (err != 0 && err != EINPROGRESS)
        lost(c, "connect: %s", errname(err));
    return c;
}

/* -- time --------------------------------------------------------------- */

static int timer_less(const timer_item *a, const timer_item *b)
{
    return a->when < b->when || (a->when == b->when && a->order < b->order);
}

static void at(double when, client_t *c)
{
    if (G.ntimers == G.ctimers) {
        G.ctimers = G.ctimers ? 2 * G.ctimers : 64;
        G.timers = xrealloc(G.timers, G.ctimers * sizeof *G.timers);
    }
    size_t i = G.ntimers++;
    timer_item item = {when, ++G.timer_order, c->index};
    while (i > 0 && timer_less(&item, &G.timers[(i - 1) / 2])) {
        G.timers[i] = G.timers[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    G.timers[i] = item;
}

static timer_item pop_timer(void)
{
    timer_item top = G.timers[0], last = G.timers[--G.ntimers];
    size_t i = 0;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= G.ntimers)
            break;
        if (child + 1 < G.ntimers && timer_less(&G.timers[child + 1], &G.timers[child]))
            child++;
        if (!timer_less(&G.timers[child], &last))
            break;
        G.timers[i] = G.timers[child];
        i = child;
    }
    if (G.ntimers)
        G.timers[i] = last;
    return top;
}

static void step(double timeout)
{
    static struct epoll_event events[MAX_EVENTS];
    flush_dirty();
    if (G.ntimers) {
        double until = G.timers[0].when - now();
        if (until < timeout)
            timeout = until;
        if (timeout < 0)
            timeout = 0;
    }
    double ms_f = timeout * 1000.0;
    int ms = (int)ms_f;
    if (ms < ms_f)
        ms++;
    int n = epoll_wait(G.ep, events, MAX_EVENTS, ms);
    if (n < 0) {
        if (errno != EINTR)
            die("epoll_wait: %s", strerror(errno));
        n = 0;
    }
    if (n > 0) {
        G.last_rx = now();
        if (G.batch > 0 && n < G.batch_events) {
            struct timespec ts = {(time_t)G.batch, (long)((G.batch - (double)(time_t)G.batch) * 1e9)};
            nanosleep(&ts, NULL);
            n = epoll_wait(G.ep, events, MAX_EVENTS, 0);
            if (n < 0)
                n = 0;
        }
    }
    for (int i = 0; i < n; i++) {
        client_t *c = G.clients[events[i].data.u32];
        uint32_t mask = events[i].events;
        if (c->state == CLOSED)
            continue;
        if (mask & EPOLLOUT) {
            if (c->state == CONNECTING)
                connected(c);
            else
                send_pending(c);
        }
        if ((mask & (EPOLLIN | EPOLLERR | EPOLLHUP)) && c->state != CLOSED)
            on_readable(c);
    }
    if (G.ntimers) {
        double t = now();
        while (G.ntimers && G.timers[0].when <= t) {
            timer_item item = pop_timer();
            G.on_timer(G.clients[item.client], item.when);
        }
    }
    flush_dirty();
}

typedef int (*done_fn)(void);

static void run_until(double deadline, done_fn done)
{
    for (;;) {
        double t = now();
        if (t >= deadline || (done && done()))
            return;
        step(deadline - t < 0.05 ? deadline - t : 0.05);
    }
}

/* Open count clients, at most concurrency at a time, until each has its
 * welcome or limit seconds pass; returns the time taken. */
static double open_clients(int count_, int concurrency, double limit, size_t *first)
{
    *first = G.nclients;
    double t0 = now(), deadline = t0 + limit;
    int started = 0;
    while (now() < deadline) {
        while (started < count_ && G.opening < concurrency) {
            connect_one();
            started++;
        }
        if (started == count_ && G.opening == 0)
            break;
        step(0.05);
    }
    double elapsed = now() - t0;
    for (size_t i = *first; i < G.nclients; i++) {
        client_t *c = G.clients[i];
        if (c->state != READY && c->state != CLOSED)
            lost(c, "timeout: no welcome");
    }
    return elapsed;
}

/* Read until nothing arrives for quiet seconds (presence storms). */
static double drain(double quiet, double limit)
{
    double t0 = now();
    G.last_rx = t0;
    while (now() - G.last_rx < quiet && now() - t0 < limit)
        step(0.05);
    return now() - t0;
}

static int all_closed(void)
{
    return G.open_fds == 0;
}

/* Close every connection politely (a close frame, the server's reply) for
 * at most limit seconds; reset the rest, leaving no TIME_WAIT. */
static void close_all(double limit)
{
    G.closing = 1;
    G.ntimers = 0;
    static const unsigned char code[2] = {0x03, 0xE8};
    for (size_t i = 0; i < G.nclients; i++) {
        client_t *c = G.clients[i];
        if (c->state == OPENING || c->state == JOINING || c->state == READY) {
            c->reading = 1;
            watch(c);
            buf_t goodbye = {0};
            masked_frame(&goodbye, 0x8, code, 2, NULL);
            send_bytes(c, goodbye.p, goodbye.len);
            free(goodbye.p);
        }
    }
    run_until(now() + limit, all_closed);
    struct linger linger = {1, 0};
    for (size_t i = 0; i < G.nclients; i++) {
        client_t *c = G.clients[i];
        if (c->state == CLOSED)
            continue;
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &linger, sizeof linger);
        lost(c, "reset at the end");
    }
}

/* -- the server under test and the cores -------------------------------- */

static long long server_ticks(void)
{
    if (!G.server_pid)
        return -1;
    char path[64], text[2048];
    snprintf(path, sizeof path, "/proc/%d/stat", G.server_pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    if (n <= 0)
        return -1;
    text[n] = 0;
    char *p = strrchr(text, ')');
    if (!p)
        return -1;
    p++;
    long long fields[13];
    for (int i = 0; i < 13; i++) {
        while (*p == ' ')
            p++;
        if (!*p)
            return -1;
        fields[i] = strtoll(p, &p, 10); /* field 0 (state) reads as 0 */
        while (*p && *p != ' ')
            p++;
    }
    return fields[11] + fields[12]; /* utime + stime */
}

static int server_alive(void)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", G.server_pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return 0;
    int found = 0;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            found = 1;
    fclose(f);
    return found;
}

#define MAX_CORES 256
typedef struct {
    char name[16];
    long long busy;
} core_t;

/* Ticks each core spent running tasks (user, nice, system) or stolen. */
static size_t core_busy(core_t *cores)
{
    FILE *f = fopen("/proc/stat", "re");
    if (!f)
        return 0;
    char line[1024];
    size_t n = 0;
    while (fgets(line, sizeof line, f) && n < MAX_CORES) {
        if (strncmp(line, "cpu", 3) != 0 || line[3] == ' ')
            continue;
        char *p = line;
        size_t k = 0;
        while (*p && *p != ' ' && k < sizeof cores[n].name - 1)
            cores[n].name[k++] = *p++;
        cores[n].name[k] = 0;
        long long v[8] = {0};
        for (int i = 0; i < 8; i++)
            v[i] = strtoll(p, &p, 10);
        cores[n].busy = v[0] + v[1] + v[2] + v[7];
        n++;
    }
    fclose(f);
    return n;
}

static int core_cmp(const void *a, const void *b)
{
    return strcmp(((const core_t *)a)->name, ((const core_t *)b)->name);
}

/* -- JSON output -------------------------------------------------------- */

static void j_raw(buf_t *b, const char *s)
{
    buf_put(b, s, strlen(s));
}

/* A float as Python's json writes it: the shortest text that reads back as
 * the same number, positional from 1e-4 to 1e16, always with a dot. */
static void j_float(buf_t *b, double v)
{
    char text[48];
    if (v != v || v > 1.7976931348623157e308 || v < -1.7976931348623157e308) {
        j_raw(b, "null");
        return;
    }
    int prec = 1;
    for (; prec <= 17; prec++) {
        snprintf(text, sizeof text, "%.*g", prec, v);
        if (strtod(text, NULL) == v)
            break;
    }
    char *e = strchr(text, 'e');
    double mag = v < 0 ? -v : v;
    if (e && mag >= 1e-4 && mag < 1e16) {
        int exp10 = atoi(e + 1), decimals = prec - 1 - exp10;
        snprintf(text, sizeof text, "%.*f", decimals > 0 ? decimals : 0, v);
    }
    j_raw(b, text);
    if (!strpbrk(text, ".e"))
        j_raw(b, ".0");
}

static void j_int(buf_t *b, long long v)
{
    buf_printf(b, "%lld", v);
}

/* A string, ASCII-only as json.dumps writes it; bad UTF-8 becomes U+FFFD. */
static void j_str(buf_t *b, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    buf_put(b, "\"", 1);
    while (*p) {
        unsigned cp = *p;
        size_t need = 0;
        if (cp < 0x80) {
            p++;
            if (cp == '"' || cp == '\\') {
                char e[3] = {'\\', (char)cp, 0};
                j_raw(b, e);
            } else if (cp == '\n') {
                j_raw(b, "\\n");
            } else if (cp == '\r') {
                j_raw(b, "\\r");
            } else if (cp == '\t') {
                j_raw(b, "\\t");
            } else if (cp < 0x20 || cp == 0x7F) {
                buf_printf(b, "\\u%04x", cp);
            } else {
                buf_put(b, p - 1, 1);
            }
            continue;
        }
        if ((cp & 0xE0) == 0xC0)
            need = 1, cp &= 0x1F;
        else if ((cp & 0xF0) == 0xE0)
            need = 2, cp &= 0x0F;
        else if ((cp & 0xF8) == 0xF0)
            need = 3, cp &= 0x07;
        else {
            j_raw(b, "\\ufffd");
            p++;
            continue;
        }
        size_t i = 1;
        for (; i <= need; i++) {
            if ((p[i] & 0xC0) != 0x80)
                break;
            cp = cp << 6 | (p[i] & 0x3F);
        }
        if (i <= need || cp > 0x10FFFF || (cp >= 0xD800 && cp < 0xE000)) {
            j_raw(b, "\\ufffd");
            p++;
            continue;
        }
        p += need + 1;
        if (cp >= 0x10000) {
            cp -= 0x10000;
            buf_printf(b, "\\u%04x\\u%04x", 0xD800 + (cp >> 10), 0xDC00 + (cp & 0x3FF));
        } else {
            buf_printf(b, "\\u%04x", cp);
        }
    }
    buf_put(b, "\"", 1);
}

static void j_key(buf_t *b, const char *key)
{
    if (b->len && b->p[b->len - 1] != '{' && b->p[b->len - 1] != '[')
        j_raw(b, ", ");
    j_str(b, key);
    j_raw(b, ": ");
}

static void j_counter(buf_t *b, const char *key, const counter_t *c)
{
    j_key(b, key);
    j_raw(b, "{");
    for (size_t i = 0; i < c->n; i++) {
        j_key(b, c->items[i].key);
        j_int(b, c->items[i].n);
    }
    j_raw(b, "}");
}

/* -- measurement windows ------------------------------------------------ */

typedef struct {
    double wall, cpu;
    long long server_ticks, delivered, recvs;
    core_t cores[MAX_CORES];
    size_t ncores;
    struct rusage usage;
} window_t;

static void window_open(window_t *w)
{
    w->wall = now();
    w->cpu = process_time();
    w->server_ticks = server_ticks();
    w->delivered = G.delivered;
    w->ncores = core_busy(w->cores);
    w->recvs = G.recvs;
    getrusage(RUSAGE_SELF, &w->usage);
}

static double tv(struct timeval t)
{
    return (double)t.tv_sec + (double)t.tv_usec * 1e-6;
}

typedef struct {
    double seconds, generator_cpu;
    long long deliveries;
} closed_t;

/* Close a window: write its keys into b (inside an open object). */
static closed_t window_close(const window_t *w, buf_t *b)
{
    closed_t r;
    double wall = now() - w->wall;
    r.seconds = wall;
    r.generator_cpu = (process_time() - w->cpu) / wall;
    r.deliveries = G.delivered - w->delivered;
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    long long ticks = server_ticks();
    core_t cores[MAX_CORES];
    size_t ncores = core_busy(cores);
    j_key(b, "seconds");
    j_float(b, wall);
    j_key(b, "generator_cpu");
    j_float(b, r.generator_cpu);
    j_key(b, "deliveries");
    j_int(b, r.deliveries);
    j_key(b, "recv_calls");
    j_int(b, G.recvs - w->recvs);
    j_key(b, "generator_user");
    j_float(b, (tv(usage.ru_utime) - tv(w->usage.ru_utime)) / wall);
    j_key(b, "generator_sys");
    j_float(b, (tv(usage.ru_stime) - tv(w->usage.ru_stime)) / wall);
    if (ticks >= 0 && w->server_ticks >= 0) {
        j_key(b, "server_cpu");
        j_float(b, (double)(ticks - w->server_ticks) / (double)G.clock_ticks / wall);
    }
    qsort(cores, ncores, sizeof *cores, core_cmp);
    j_key(b, "core_busy");
    j_raw(b, "{");
    for (size_t i = 0; i < ncores; i++) {
        long long before = 0;
        for (size_t k = 0; k < w->ncores; k++)
            if (strcmp(w->cores[k].name, cores[i].name) == 0)
                before = w->cores[k].busy;
        j_key(b, cores[i].name);
        j_float(b, (double)(cores[i].busy - before) / (double)G.clock_ticks / wall);
    }
    j_raw(b, "}");
    return r;
}

/* -- statistics --------------------------------------------------------- */

typedef struct {
    double *v;
    size_t n, cap;
} series_t;

static void series_add(series_t *s, double v)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 4096;
        s->v = xrealloc(s->v, s->cap * sizeof *s->v);
    }
    s->v[s->n++] = v;
}

static int double_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void j_latency(buf_t *b, series_t *s)
{
    qsort(s->v, s->n, sizeof *s->v, double_cmp);
    static const struct {
        const char *key;
        double q;
    } qs[] = {{"p50_ms", 0.50}, {"p99_ms", 0.99}};
    for (size_t i = 0; i < 2; i++) {
        j_key(b, qs[i].key);
        if (!s->n) {
            j_raw(b, "null");
            continue;
        }
        size_t at_ = (size_t)(qs[i].q * (double)s->n);
        if (at_ > s->n - 1)
            at_ = s->n - 1;
        j_float(b, 1000 * s->v[at_]);
    }
    j_key(b, "samples");
    j_int(b, (long long)s->n);
}

static void j_summary(buf_t *b)
{
    j_counter(b, "connect_failures", &G.failures);
    j_counter(b, "closed_by_server", &G.closes);
    j_counter(b, "errors", &G.errors);
    j_key(b, "error_samples");
    j_raw(b, "[");
    for (size_t i = 0; i < G.nsamples; i++) {
        if (i)
            j_raw(b, ", ");
        j_str(b, G.error_samples[i]);
    }
    j_raw(b, "]");
    j_key(b, "server_alive");
    j_raw(b, G.server_pid ? (server_alive() ? "true" : "false") : "null");
}

/* -- scenarios ---------------------------------------------------------- */

typedef struct {
    const char *scenario;
    int port, server_pid, clients, concurrency, senders, inflight, text;
    double connect_limit, warmup, duration, grace;
    const char *rates;
} args_t;

static client_t **senders;
static int nsenders;
static series_t rtts;
static int measuring;

/* Open the room; returns how many clients have their welcome. */
static long long open_room(const args_t *a, buf_t *b)
{
    size_t first;
    double elapsed = open_clients(a->clients, a->concurrency, a->connect_limit, &first);
    long long ready = 0;
    for (size_t i = first; i < G.nclients; i++)
        ready += G.clients[i]->state == READY;
    double drained = drain(0.5, 30.0);
    j_key(b, "connected");
    j_int(b, ready);
    j_key(b, "connect_s");
    j_float(b, elapsed);
    j_key(b, "drain_s");
    j_float(b, drained);
    return ready;
}

static void make_senders(int count_, size_t text)
{
    senders = xrealloc(NULL, (size_t)(count_ > 0 ? count_ : 1) * sizeof *senders);
    nsenders = 0;
    for (size_t i = 0; i < G.nclients && nsenders < count_; i++) {
        client_t *c = G.clients[i];
        if (c->state != READY)
            continue;
        c->maker = xrealloc(NULL, sizeof *c->maker);
        maker_init(c->maker, nsenders, text);
        senders[nsenders++] = c;
    }
}

static void fanout_echo(client_t *c, long long seq)
{
    double t = now(), sent;
    if (!pop_started(c, seq, &sent))
        return;
    if (measuring) {
        series_add(&rtts, t - sent);
        c->completed++;
    }
    send_message(c, t);
}

static void no_timer(client_t *c, double when)
{
    (void)c;
    (void)when;
}

/* Closed loop: each sender keeps inflight messages outstanding. */
static void scenario_fanout(const args_t *a, buf_t *b)
{
    G.room = "fanout";
    j_raw(b, "{");
    open_room(a, b);
    make_senders(a->senders, (size_t)a->text);
    G.on_echo = fanout_echo;
    G.on_timer = no_timer;
    double t0 = now();
    for (int i = 0; i < nsenders; i++)
        for (int k = 0; k < a->inflight; k++)
            send_message(senders[i], t0);
    run_until(t0 + a->warmup, NULL);
    measuring = 1;
    window_t *w = xrealloc(NULL, sizeof *w);
    window_open(w);
    run_until(now() + a->duration, NULL);
    closed_t r = window_close(w, b);
    free(w);
    measuring = 0;
    long long total = 0, lo = 0, hi = 0;
    for (int i = 0; i < nsenders; i++) {
        long long v = senders[i]->completed;
        total += v;
        if (i == 0 || v < lo)
            lo = v;
        if (i == 0 || v > hi)
            hi = v;
    }
    j_key(b, "deliveries_per_s");
    j_float(b, (double)r.deliveries / r.seconds);
    j_key(b, "messages_per_s");
    j_float(b, (double)total / r.seconds);
    j_key(b, "fairness");
    j_float(b, nsenders && hi ? (double)lo / (double)hi : 0.0);
    j_key(b, "sender_completed");
    j_raw(b, "[");
    for (int i = 0; i < nsenders; i++) {
        if (i)
            j_raw(b, ", ");
        j_int(b, senders[i]->completed);
    }
    j_raw(b, "]");
    j_latency(b, &rtts);
    j_summary(b);
    j_raw(b, "}");
    close_all(2.0);
}

/* rates: one offered load at a time */
static double level_start, level_stop, level_interval;
static long long in_window;

static void rates_echo(client_t *c, long long seq)
{
    double sent;
    if (!pop_started(c, seq, &sent))
        return;
    slot_t *s = &c->slots[seq];
    if (s->flags & IN_WINDOW) {
        s->flags &= (unsigned char)~IN_WINDOW;
        in_window--;
        series_add(&rtts, now() - sent);
    }
}

static void rates_tick(client_t *c, double when)
{
    if (when >= level_stop)
        return;
    if (when >= level_start) {
        slot(c, c->seq)->flags |= IN_WINDOW;
        in_window++;
    }
    send_message(c, when);
    at(when + level_interval, c);
}

static int nothing_in_window(void)
{
    return in_window == 0;
}

static void run_level(const args_t *a, long long members, double offered, buf_t *b)
{
    rtts.n = 0;
    in_window = 0;
    level_interval = (double)members * nsenders / offered;
    double t0 = now() + 0.05;
    level_start = t0 + a->warmup;
    level_stop = t0 + a->warmup + a->duration;
    G.on_echo = rates_echo;
    G.on_timer = rates_tick;
    for (int i = 0; i < nsenders; i++)
        at(t0 + level_interval * i / nsenders, senders[i]);
    run_until(level_start, NULL);
    window_t *w = xrealloc(NULL, sizeof *w);
    window_open(w);
    run_until(level_stop, NULL);
    j_raw(b, "{");
    j_key(b, "offered");
    j_float(b, offered);
    closed_t r = window_close(w, b);
    free(w);
    run_until(now() + a->grace, nothing_in_window);
    /* A message still unanswered counts with the time waited so far (a lower
     * bound), so a server that falls behind cannot hide its slowest replies. */
    double t_end = now();
    long long unanswered = 0;
    for (int i = 0; i < nsenders; i++) {
        client_t *c = senders[i];
        for (long long s = c->low; s < c->seq; s++)
            if (c->slots[s].flags & IN_WINDOW) {
                series_add(&rtts, t_end - c->slots[s].t);
                unanswered++;
            }
    }
    double achieved = (double)r.deliveries / r.seconds;
    j_key(b, "achieved");
    j_float(b, achieved);
    j_key(b, "unanswered");
    j_int(b, unanswered);
    j_latency(b, &rtts);
    j_key(b, "keeps_up");
    j_raw(b, achieved / offered >= 0.95 && !unanswered ? "true" : "false");
    j_key(b, "drain_s");
    j_float(b, drain(0.3, a->grace));
    j_raw(b, "}");
    G.ntimers = 0;
    for (int i = 0; i < nsenders; i++) {
        client_t *c = senders[i];
        for (long long s = c->low; s < c->seq; s++)
            c->slots[s].flags = 0;
        c->low = c->seq;
    }
}

/* Open loop: senders follow a schedule so that the room receives the
 * offered deliveries per second; latency is measured from the scheduled
 * send time, so a server that falls behind shows it. */
static void scenario_rates(const args_t *a, buf_t *b)
{
    G.room = "rates";
    j_raw(b, "{");
    long long members = open_room(a, b);
    make_senders(a->senders, (size_t)a->text);
    j_key(b, "levels");
    j_raw(b, "[");
    char *list = strdup(a->rates), *save = NULL;
    int first = 1;
    for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *end;
        double offered = strtod(tok, &end);
        if (end == tok || offered <= 0)
            die("bad --rates entry: %s", tok);
        if (!first)
            j_raw(b, ", ");
        first = 0;
        run_level(a, members, offered, b);
    }
    free(list);
    j_raw(b, "]");
    j_summary(b);
    j_raw(b, "}");
    close_all(2.0);
}

/* -- command line ------------------------------------------------------- */

static const char usage[] =
    "usage: loadgen {fanout,rates} --port PORT [--proto ws] [--server-pid PID]\n"
    "               [--clients N] [--concurrency N] [--connect-limit S]\n"
    "               [--senders N] [--inflight N] [--text N] [--warmup S]\n"
    "               [--duration S] [--grace S] [--rates R1,R2,...]\n"
    "(idle, slow, storm, history and --proto sio: use bench/loadgen.py)\n";

static long parse_long(const char *name, const char *v)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end)
        die("argument %s: invalid int value: '%s'", name, v);
    return x;
}

static double parse_double(const char *name, const char *v)
{
    char *end;
    double x = strtod(v, &end);
    if (end == v || *end)
        die("argument %s: invalid float value: '%s'", name, v);
    return x;
}

static void parse_args(int argc, char **argv, args_t *a)
{
    *a = (args_t){.clients = 100, .concurrency = 200, .connect_limit = 60.0, .senders = 10,
                  .inflight = 4, .text = 100, .warmup = 1.0, .duration = 5.0, .grace = 3.0,
                  .rates = "10000,50000,100000"};
    int have_port = 0;
    for (int i = 1; i < argc; i++) {
        char *arg = argv[i], *value = NULL;
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            fputs(usage, stdout);
            exit(0);
        }
        if (strncmp(arg, "--", 2) != 0) {
            if (a->scenario)
                die("unexpected argument: %s", arg);
            a->scenario = arg;
            continue;
        }
        char name[64];
        char *eq = strchr(arg, '=');
        size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
        if (len >= sizeof name)
            die("unknown option: %s", arg);
        memcpy(name, arg, len);
        name[len] = 0;
        if (eq)
            value = eq + 1;
        else if (i + 1 < argc)
            value = argv[++i];
        else
            die("argument %s: expected one argument", name);
        if (!strcmp(name, "--port"))
            a->port = (int)parse_long(name, value), have_port = 1;
        else if (!strcmp(name, "--proto")) {
            if (strcmp(value, "ws") != 0)
                die("--proto %s is not supported here: use bench/loadgen.py", value);
        } else if (!strcmp(name, "--server-pid"))
            a->server_pid = (int)parse_long(name, value);
        else if (!strcmp(name, "--clients"))
            a->clients = (int)parse_long(name, value);
        else if (!strcmp(name, "--concurrency"))
            a->concurrency = (int)parse_long(name, value);
        else if (!strcmp(name, "--connect-limit"))
            a->connect_limit = parse_double(name, value);
        else if (!strcmp(name, "--senders"))
            a->senders = (int)parse_long(name, value);
        else if (!strcmp(name, "--inflight"))
            a->inflight = (int)parse_long(name, value);
        else if (!strcmp(name, "--text"))
            a->text = (int)parse_long(name, value);
        else if (!strcmp(name, "--warmup"))
            a->warmup = parse_double(name, value);
        else if (!strcmp(name, "--duration"))
            a->duration = parse_double(name, value);
        else if (!strcmp(name, "--grace"))
            a->grace = parse_double(name, value);
        else if (!strcmp(name, "--rates"))
            a->rates = value;
        else if (!strcmp(name, "--rate") || !strcmp(name, "--room-size") ||
                 !strcmp(name, "--settle") || !strcmp(name, "--messages") ||
                 !strcmp(name, "--limit"))
            ; /* options of the other scenarios: accepted, unused */
        else
            die("unknown option: %s", name);
    }
    if (!a->scenario)
        die("a scenario is needed\n%s", usage);
    if (strcmp(a->scenario, "fanout") != 0 && strcmp(a->scenario, "rates") != 0)
        die("scenario %s is not implemented here: use bench/loadgen.py", a->scenario);
    if (!have_port)
        die("the following arguments are required: --port");
    if (a->text < 0 || a->senders < 0 || a->inflight < 0 || a->clients < 0)
        die("negative counts are not allowed");
}

int main(int argc, char **argv)
{
    args_t a;
    parse_args(argc, argv, &a);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    G.port = a.port;
    G.server_pid = a.server_pid;
    G.clock_ticks = sysconf(_SC_CLK_TCK);
    const char *batch = getenv("LOADGEN_BATCH"), *events = getenv("LOADGEN_BATCH_EVENTS");
    G.batch = batch ? strtod(batch, NULL) : 0.0;
    G.batch_events = events ? atoi(events) : 50;
    G.ep = epoll_create1(EPOLL_CLOEXEC);
    if (G.ep < 0)
        die("epoll_create1: %s", strerror(errno));
    buf_t out = {0};
    if (strcmp(a.scenario, "fanout") == 0)
        scenario_fanout(&a, &out);
    else
        scenario_rates(&a, &out);
    buf_put(&out, "\n", 1);
    fwrite(out.p, 1, out.len, stdout);
    fflush(stdout);
    return 0;
}
