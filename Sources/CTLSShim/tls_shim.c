/* CTLSShim: OpenSSL 3 behind a small C API (see include/CTLSShim.h). */
#define _GNU_SOURCE
#include "CTLSShim.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define ATS_ERROR_LENGTH 512
#define ATS_WRITE_BUFFER (64 * 1024 + 1024)

struct ats_server_name {
    char *name;
    struct ats_context *certificates;
};

struct ats_context {
    SSL_CTX *ctx;
    int server;
    _Atomic int references;
    uint8_t *alpn;
    size_t alpn_length;
    struct ats_server_name *names;
    size_t name_count;
    char error[ATS_ERROR_LENGTH];
};

struct ats_conn {
    SSL *ssl;
    ats_context *context;
    int fd;
    int io_errno;
    int eof;
    /* The last recv of our BIO returned less than it asked for (or EAGAIN): the socket was drained then. */
    int input_drained;
    /* recv calls of our BIO that found nothing (EAGAIN), for tests and diagnostics. */
    long empty_receives;
    /* Records written since the last flush, sent together by bio_flush (one send for a write's records instead
     * of one each). Allocated when a record arrives, freed once everything is sent: an idle connection holds
     * no write buffer. `out_sent` bytes at the front have already gone out. */
    uint8_t *out;
    size_t out_length;
    size_t out_sent;
    int verify_failure;
    char error[ATS_ERROR_LENGTH];
    char verify_error[ATS_ERROR_LENGTH];
};

static _Atomic long live_connections = 0;
static _Atomic long live_contexts = 0;

long ats_live_connections(void) { return atomic_load(&live_connections); }
long ats_live_contexts(void) { return atomic_load(&live_contexts); }

void ats_free(void *pointer) { OPENSSL_free(pointer); }

int ats_is_ip_address(const char *text) {
    unsigned char buffer[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, text, buffer) == 1 || inet_pton(AF_INET6, text, buffer) == 1;
}

/* Drains OpenSSL's error queue into `out`: the first error's reason (the root cause), or `fallback`. */
static void take_errors(char *out, size_t length, const char *fallback) {
    unsigned long first = ERR_get_error();
    unsigned long next;
    while ((next = ERR_get_error()) != 0) { (void)next; }
    if (first == 0) {
        snprintf(out, length, "%s", fallback);
        return;
    }
    const char *reason = ERR_reason_error_string(first);
    if (reason != NULL) {
        snprintf(out, length, "%s", reason);
    } else {
        ERR_error_string_n(first, out, length);
    }
}

/* MARK: Contexts */

const char *ats_context_error(const ats_context *context) { return context->error; }

static int context_fail(ats_context *context, const char *what) {
    char reason[ATS_ERROR_LENGTH];
    take_errors(reason, sizeof reason, "unknown error");
    snprintf(context->error, sizeof context->error, "%s: %s", what, reason);
    return 0;
}

ats_context *ats_context_new(int server, char *error, size_t error_length) {
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (ctx == NULL) {
        take_errors(error, error_length, "SSL_CTX_new failed");
        return NULL;
    }
    ats_context *context = calloc(1, sizeof *context);
    if (context == NULL) {
        SSL_CTX_free(ctx);
        snprintf(error, error_length, "out of memory");
        return NULL;
    }
    context->ctx = ctx;
    context->server = server != 0;
    atomic_store(&context->references, 1);
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_AUTO_RETRY);
    SSL_CTX_clear_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    /* Read ahead: one recv fills OpenSSL's record buffer (up to ~16 KiB) instead of one recv for each record's
     * 5-byte header and another for its body. Bytes it read beyond the record being returned stay in OpenSSL
     * (SSL_has_pending), which TLSSocket's reads drain before they wait for the socket. */
    SSL_CTX_set_read_ahead(ctx, 1);
    /* With read ahead, one recv can take up to this much: four full records. */
    SSL_CTX_set_default_read_buffer_len(ctx, 64 * 1024);
    atomic_fetch_add(&live_contexts, 1);
    return context;
}

static void context_release(ats_context *context) {
    if (context == NULL) return;
    if (atomic_fetch_sub(&context->references, 1) != 1) return;
    for (size_t i = 0; i < context->name_count; i++) {
        free(context->names[i].name);
        context_release(context->names[i].certificates);
    }
    free(context->names);
    free(context->alpn);
    SSL_CTX_free(context->ctx);
    free(context);
    atomic_fetch_sub(&live_contexts, 1);
}

void ats_context_free(ats_context *context) { context_release(context); }

int ats_context_set_versions(ats_context *context, int min_version, int max_version) {
    ERR_clear_error();
    if (!SSL_CTX_set_min_proto_version(context->ctx, min_version)) return context_fail(context, "minimum version");
    if (!SSL_CTX_set_max_proto_version(context->ctx, max_version)) return context_fail(context, "maximum version");
    return 1;
}

int ats_context_set_verify(ats_context *context, int mode) {
    int flags = SSL_VERIFY_NONE;
    if (mode == ATS_VERIFY_PEER) flags = SSL_VERIFY_PEER;
    if (mode == ATS_VERIFY_REQUIRE_PEER) flags = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    SSL_CTX_set_verify(context->ctx, flags, NULL);
    return 1;
}

int ats_context_load_system_roots(ats_context *context) {
    ERR_clear_error();
    int ok = SSL_CTX_set_default_verify_paths(context->ctx);
    /* Minimal images may lack OpenSSL's default directory but have Debian's bundle. */
    static const char *bundle = "/etc/ssl/certs/ca-certificates.crt";
    if (access(bundle, R_OK) == 0 && SSL_CTX_load_verify_locations(context->ctx, bundle, NULL)) ok = 1;
    ERR_clear_error();
    if (!ok) return context_fail(context, "loading the system trust store");
    return 1;
}

int ats_context_load_roots_file(ats_context *context, const char *path) {
    ERR_clear_error();
    if (!SSL_CTX_load_verify_locations(context->ctx, path, NULL)) return context_fail(context, "loading trust roots");
    return 1;
}

/* Reads every certificate of a PEM buffer; `each` gets them in order (the caller frees none). */
static int pem_certificates(ats_context *context, const uint8_t *bytes, size_t length, const char *what,
                            int (*each)(ats_context *, X509 *, int index)) {
    ERR_clear_error();
    BIO *bio = BIO_new_mem_buf(bytes, (int)length);
    if (bio == NULL) return context_fail(context, what);
    int count = 0;
    X509 *certificate;
    while ((certificate = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        int ok = each(context, certificate, count);
        X509_free(certificate);
        if (!ok) {
            BIO_free(bio);
            return context_fail(context, what);
        }
        count++;
    }
    BIO_free(bio);
    unsigned long last = ERR_peek_last_error();
    if (count > 0 && ERR_GET_REASON(last) == PEM_R_NO_START_LINE) ERR_clear_error();
    if (count == 0) {
        if (ERR_peek_error() == 0) {
            snprintf(context->error, sizeof context->error, "%s: no certificate in the PEM data", what);
            return 0;
        }
        return context_fail(context, what);
    }
    ERR_clear_error();
    return 1;
}

static int add_root(ats_context *context, X509 *certificate, int index) {
    (void)index;
    return X509_STORE_add_cert(SSL_CTX_get_cert_store(context->ctx), certificate);
}

int ats_context_load_roots_pem(ats_context *context, const uint8_t *bytes, size_t length) {
    return pem_certificates(context, bytes, length, "loading trust roots", add_root);
}

int ats_context_use_chain_file(ats_context *context, const char *path) {
    ERR_clear_error();
    if (!SSL_CTX_use_certificate_chain_file(context->ctx, path)) return context_fail(context, "loading the certificate chain");
    return 1;
}

static int add_chain(ats_context *context, X509 *certificate, int index) {
    if (index == 0) return SSL_CTX_use_certificate(context->ctx, certificate);
    return SSL_CTX_add1_chain_cert(context->ctx, certificate);
}

int ats_context_use_chain_pem(ats_context *context, const uint8_t *bytes, size_t length) {
    return pem_certificates(context, bytes, length, "loading the certificate chain", add_chain);
}

int ats_context_use_key_file(ats_context *context, const char *path) {
    ERR_clear_error();
    if (!SSL_CTX_use_PrivateKey_file(context->ctx, path, SSL_FILETYPE_PEM)) return context_fail(context, "loading the private key");
    return 1;
}

int ats_context_use_key_pem(ats_context *context, const uint8_t *bytes, size_t length) {
    ERR_clear_error();
    BIO *bio = BIO_new_mem_buf(bytes, (int)length);
    if (bio == NULL) return context_fail(context, "loading the private key");
    EVP_PKEY *key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);
    if (key == NULL) return context_fail(context, "loading the private key");
    int ok = SSL_CTX_use_PrivateKey(context->ctx, key);
    EVP_PKEY_free(key);
    if (!ok) return context_fail(context, "loading the private key");
    return 1;
}

int ats_context_check_key(ats_context *context) {
    ERR_clear_error();
    if (!SSL_CTX_check_private_key(context->ctx)) return context_fail(context, "the private key does not match the certificate");
    return 1;
}

static int select_alpn(SSL *ssl, const unsigned char **out, unsigned char *out_length,
                       const unsigned char *offered, unsigned int offered_length, void *arg) {
    (void)ssl;
    ats_context *context = arg;
    unsigned char *selected = NULL;
    if (SSL_select_next_proto(&selected, out_length, context->alpn, (unsigned)context->alpn_length,
                              offered, offered_length) != OPENSSL_NPN_NEGOTIATED) {
        return SSL_TLSEXT_ERR_NOACK;
    }
    *out = selected;
    return SSL_TLSEXT_ERR_OK;
}

int ats_context_set_alpn(ats_context *context, const uint8_t *wire, size_t length) {
    ERR_clear_error();
    free(context->alpn);
    context->alpn = malloc(length ? length : 1);
    if (context->alpn == NULL) return 0;
    memcpy(context->alpn, wire, length);
    context->alpn_length = length;
    if (context->server) {
        SSL_CTX_set_alpn_select_cb(context->ctx, select_alpn, context);
        return 1;
    }
    /* SSL_CTX_set_alpn_protos returns 0 on success. */
    if (SSL_CTX_set_alpn_protos(context->ctx, wire, (unsigned)length) != 0) return context_fail(context, "ALPN");
    return 1;
}

void ats_context_set_ignore_unexpected_eof(ats_context *context, int ignore) {
    if (ignore) SSL_CTX_set_options(context->ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    else SSL_CTX_clear_options(context->ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
}

static int name_matches(const char *pattern, const char *name) {
    if (strcasecmp(pattern, name) == 0) return 1;
    if (pattern[0] == '*' && pattern[1] == '.') {
        const char *dot = strchr(name, '.');
        return dot != NULL && dot != name && strcasecmp(pattern + 1, dot) == 0;
    }
    return 0;
}

static int select_certificate(SSL *ssl, int *alert, void *arg) {
    (void)alert;
    ats_context *context = arg;
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (name == NULL) return SSL_TLSEXT_ERR_NOACK;
    for (size_t i = 0; i < context->name_count; i++) {
        if (name_matches(context->names[i].name, name)) {
            SSL_set_SSL_CTX(ssl, context->names[i].certificates->ctx);
            return SSL_TLSEXT_ERR_OK;
        }
    }
    return SSL_TLSEXT_ERR_OK;  /* the default certificate */
}

int ats_context_add_server_name(ats_context *context, const char *name, ats_context *certificates) {
    struct ats_server_name *names = realloc(context->names, (context->name_count + 1) * sizeof *names);
    if (names == NULL) return 0;
    context->names = names;
    char *copy = strdup(name);
    if (copy == NULL) return 0;
    atomic_fetch_add(&certificates->references, 1);
    names[context->name_count].name = copy;
    names[context->name_count].certificates = certificates;
    context->name_count++;
    SSL_CTX_set_tlsext_servername_callback(context->ctx, select_certificate);
    SSL_CTX_set_tlsext_servername_arg(context->ctx, context);
    return 1;
}

/* MARK: Our BIO: recv and send(MSG_NOSIGNAL) on the non-blocking descriptor */

static BIO_METHOD *socket_method = NULL;
static pthread_once_t socket_method_once = PTHREAD_ONCE_INIT;

static int bio_read(BIO *bio, char *buffer, int length) {
    ats_conn *conn = BIO_get_data(bio);
    BIO_clear_retry_flags(bio);
    for (;;) {
        ssize_t n = recv(conn->fd, buffer, (size_t)length, 0);
        if (n > 0) {
            conn->input_drained = n < length;
            return (int)n;
        }
        if (n == 0) {
            conn->eof = 1;
            return 0;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            conn->input_drained = 1;
            conn->empty_receives += 1;
            BIO_set_retry_read(bio);
        } else {
            conn->io_errno = errno;
        }
        return -1;
    }
}

/* One send(MSG_NOSIGNAL): the count, or -1 with the retry flag set (EAGAIN) or conn->io_errno set. */
static ssize_t send_some(BIO *bio, ats_conn *conn, const void *bytes, size_t length) {
    for (;;) {
        ssize_t n = send(conn->fd, bytes, length, MSG_NOSIGNAL);
        if (n >= 0) return n;
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            BIO_set_retry_write(bio);
        } else {
            conn->io_errno = errno;
        }
        return -1;
    }
}

/* Sends the buffered records: 1 when all are sent (the buffer is freed), -1 with the retry flag (room ran
 * out: call again once writable) or with conn->io_errno set. */
static int bio_flush(BIO *bio, ats_conn *conn) {
    while (conn->out_sent < conn->out_length) {
        ssize_t n = send_some(bio, conn, conn->out + conn->out_sent, conn->out_length - conn->out_sent);
        if (n < 0) return -1;
        conn->out_sent += (size_t)n;
    }
    free(conn->out);
    conn->out = NULL;
    conn->out_length = 0;
    conn->out_sent = 0;
    return 1;
}

/* OpenSSL hands us one record (at most ~16 KiB) per call. It goes into the buffer, which bio_flush sends; a
 * record that does not fit first flushes what is there. OpenSSL retries a write that got the retry flag with
 * the same record (SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER), so nothing is accepted twice or lost. */
static int bio_write(BIO *bio, const char *buffer, int length) {
    ats_conn *conn = BIO_get_data(bio);
    BIO_clear_retry_flags(bio);
    if (length <= 0) return 0;
    size_t size = (size_t)length;
    if (conn->out_length + size > ATS_WRITE_BUFFER && conn->out_length > 0) {
        if (bio_flush(bio, conn) < 0) return -1;
    }
    if (size > ATS_WRITE_BUFFER) {
        /* Larger than the whole buffer (never for TLS records): straight to the socket. */
        ssize_t n = send_some(bio, conn, buffer, size);
        return n < 0 ? -1 : (int)n;
    }
    if (conn->out == NULL) {
        conn->out = malloc(ATS_WRITE_BUFFER);
        if (conn->out == NULL) {
            conn->io_errno = ENOMEM;
            return -1;
        }
    }
    memcpy(conn->out + conn->out_length, buffer, size);
    conn->out_length += size;
    return length;
}

static long bio_ctrl(BIO *bio, int command, long number, void *pointer) {
    (void)number;
    (void)pointer;
    ats_conn *conn = BIO_get_data(bio);
    switch (command) {
    case BIO_CTRL_FLUSH:
        /* OpenSSL flushes at the end of each handshake flight; ats_conn_flush at the end of each write. */
        BIO_clear_retry_flags(bio);
        return conn == NULL ? 1 : bio_flush(bio, conn);
    case BIO_CTRL_WPENDING: return conn == NULL ? 0 : (long)(conn->out_length - conn->out_sent);
    case BIO_CTRL_EOF: return conn != NULL && conn->eof;
    case BIO_CTRL_PUSH:
    case BIO_CTRL_POP: return 0;
    default: return 0;
    }
}

static int bio_create(BIO *bio) {
    BIO_set_init(bio, 1);
    return 1;
}

static int bio_destroy(BIO *bio) {
    BIO_set_data(bio, NULL);
    return 1;
}

static void make_socket_method(void) {
    BIO_METHOD *method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "AsyncSockets socket");
    if (method == NULL) return;
    BIO_meth_set_write(method, bio_write);
    BIO_meth_set_read(method, bio_read);
    BIO_meth_set_ctrl(method, bio_ctrl);
    BIO_meth_set_create(method, bio_create);
    BIO_meth_set_destroy(method, bio_destroy);
    socket_method = method;
}

/* MARK: Connections */

ats_conn *ats_conn_new(ats_context *context, int fd, char *error, size_t error_length) {
    pthread_once(&socket_method_once, make_socket_method);
    ERR_clear_error();
    if (socket_method == NULL) {
        snprintf(error, error_length, "could not create the socket BIO method");
        return NULL;
    }
    ats_conn *conn = calloc(1, sizeof *conn);
    if (conn == NULL) {
        snprintf(error, error_length, "out of memory");
        return NULL;
    }
    conn->fd = fd;
    conn->ssl = SSL_new(context->ctx);
    BIO *bio = conn->ssl ? BIO_new(socket_method) : NULL;
    if (bio == NULL) {
        take_errors(error, error_length, "SSL_new failed");
        if (conn->ssl) SSL_free(conn->ssl);
        free(conn);
        return NULL;
    }
    BIO_set_data(bio, conn);
    /* One BIO for both directions (SSL_set_bio takes one reference for the pair); writes are coalesced inside
     * it (bio_write, bio_flush). */
    SSL_set_bio(conn->ssl, bio, bio);
    if (context->server) SSL_set_accept_state(conn->ssl);
    else SSL_set_connect_state(conn->ssl);
    atomic_fetch_add(&context->references, 1);
    conn->context = context;
    atomic_fetch_add(&live_connections, 1);
    return conn;
}

void ats_conn_free(ats_conn *conn) {
    if (conn == NULL) return;
    SSL_free(conn->ssl);  /* no I/O: SSL_free never sends close_notify */
    free(conn->out);
    context_release(conn->context);
    free(conn);
    atomic_fetch_sub(&live_connections, 1);
}

int ats_conn_set_host(ats_conn *conn, const char *host, int is_ip, int verify) {
    ERR_clear_error();
    int ok = 1;
    if (is_ip) {
        if (verify) ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(conn->ssl), host);
    } else {
        ok = SSL_set_tlsext_host_name(conn->ssl, host);
        if (ok && verify) ok = SSL_set1_host(conn->ssl, host);
    }
    if (!ok) take_errors(conn->error, sizeof conn->error, "invalid host name");
    return ok;
}

/* Empties this thread's error queue before an SSL call, so that the call's result is read from its own errors
 * only. Peeks first: ERR_clear_error walks all 16 slots of the queue (two OPENSSL_free calls each) even when the
 * queue is empty, which is nearly always; per 64-byte round trip that was 2.5% of the server's time. */
static inline void clear_errors(void) {
    if (ERR_peek_error() != 0) ERR_clear_error();
}

/* Maps the result of one SSL call; reads the error queue right after it (same thread). */
static int finish(ats_conn *conn, int ok) {
    if (ok > 0) return ATS_OK;
    int error = SSL_get_error(conn->ssl, ok);
    switch (error) {
    case SSL_ERROR_WANT_READ: return ATS_WANT_READ;
    case SSL_ERROR_WANT_WRITE: return ATS_WANT_WRITE;
    case SSL_ERROR_ZERO_RETURN: return ATS_CLOSED;
    case SSL_ERROR_SYSCALL:
        if (ERR_peek_error() == 0) {
            ERR_clear_error();
            return ATS_SYSCALL;
        }
        break;
    default: break;
    }
    unsigned long first = ERR_peek_error();
    if (ERR_GET_LIB(first) == ERR_LIB_SSL && ERR_GET_REASON(first) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
        ERR_clear_error();
        return ATS_TRUNCATED;
    }
    if (conn->io_errno != 0 && error == SSL_ERROR_SYSCALL) {
        ERR_clear_error();
        return ATS_SYSCALL;
    }
    take_errors(conn->error, sizeof conn->error, "TLS failure");
    long verify = SSL_get_verify_result(conn->ssl);
    if (verify != X509_V_OK) {
        conn->verify_failure = 1;
        snprintf(conn->verify_error, sizeof conn->verify_error, "%s", X509_verify_cert_error_string(verify));
    }
    return ATS_FAILED;
}

int ats_conn_handshake(ats_conn *conn) {
    clear_errors();
    conn->io_errno = 0;
    return finish(conn, SSL_do_handshake(conn->ssl));
}

int ats_conn_read(ats_conn *conn, void *buffer, size_t length, size_t *done) {
    clear_errors();
    conn->io_errno = 0;
    *done = 0;
    return finish(conn, SSL_read_ex(conn->ssl, buffer, length, done));
}

int ats_conn_write(ats_conn *conn, const void *buffer, size_t length, size_t *done) {
    clear_errors();
    conn->io_errno = 0;
    *done = 0;
    return finish(conn, SSL_write_ex(conn->ssl, buffer, length, done));
}

int ats_conn_flush(ats_conn *conn) {
    clear_errors();
    conn->io_errno = 0;
    BIO *wbio = SSL_get_wbio(conn->ssl);
    if (BIO_wpending(wbio) == 0) return ATS_OK;
    if (BIO_flush(wbio) > 0) return ATS_OK;
    if (BIO_should_retry(wbio)) return ATS_WANT_WRITE;
    ERR_clear_error();
    return ATS_SYSCALL;  /* conn->io_errno says why */
}

int ats_conn_shutdown(ats_conn *conn) {
    int flushed = ats_conn_flush(conn);  /* bytes of an earlier write go first */
    if (flushed != ATS_OK) return flushed;
    int rc = SSL_shutdown(conn->ssl);
    if (rc >= 0) {
        /* 0: our close_notify is queued, the peer's has not arrived; 1: both. */
        ERR_clear_error();
        return ats_conn_flush(conn);
    }
    return finish(conn, rc);
}

int ats_conn_has_pending(const ats_conn *conn) { return SSL_has_pending(conn->ssl); }
int ats_conn_input_drained(const ats_conn *conn) { return conn->input_drained; }
long ats_conn_empty_receives(const ats_conn *conn) { return conn->empty_receives; }
int ats_conn_pending(const ats_conn *conn) { return SSL_pending(conn->ssl); }
int ats_conn_errno(const ats_conn *conn) { return conn->io_errno; }
const char *ats_conn_error(const ats_conn *conn) { return conn->error; }
const char *ats_conn_verify_error(const ats_conn *conn) { return conn->verify_failure ? conn->verify_error : NULL; }
int ats_conn_failed_verification(const ats_conn *conn) { return conn->verify_failure; }
const char *ats_conn_version(const ats_conn *conn) { return SSL_get_version(conn->ssl); }

size_t ats_conn_alpn(const ats_conn *conn, const uint8_t **protocol) {
    unsigned length = 0;
    *protocol = NULL;
    SSL_get0_alpn_selected(conn->ssl, protocol, &length);
    return length;
}

const char *ats_conn_server_name(const ats_conn *conn) {
    return SSL_get_servername(conn->ssl, TLSEXT_NAMETYPE_host_name);
}

size_t ats_conn_peer_certificate_der(const ats_conn *conn, uint8_t **der) {
    *der = NULL;
    X509 *certificate = SSL_get0_peer_certificate(conn->ssl);
    if (certificate == NULL) return 0;
    int length = i2d_X509(certificate, der);
    return length > 0 ? (size_t)length : 0;
}

char *ats_conn_peer_subject(const ats_conn *conn) {
    X509 *certificate = SSL_get0_peer_certificate(conn->ssl);
    if (certificate == NULL) return NULL;
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio == NULL) return NULL;
    X509_NAME_print_ex(bio, X509_get_subject_name(certificate), 0, XN_FLAG_RFC2253);
    char *data = NULL;
    long length = BIO_get_mem_data(bio, &data);
    char *copy = OPENSSL_malloc((size_t)length + 1);
    if (copy != NULL) {
        memcpy(copy, data, (size_t)length);
        copy[length] = 0;
    }
    BIO_free(bio);
    ERR_clear_error();
    return copy;
}
