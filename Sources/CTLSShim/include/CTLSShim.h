/*
 * CTLSShim: the only C surface of OpenSSL that Swift sees.
 *
 * OpenSSL's headers are included in tls_shim.c only: their macros and STACK_OF machinery stay out of Swift.
 * This header exposes opaque pointers, plain integers and byte buffers.
 *
 * Every call that can fail clears OpenSSL's error queue first and reads it right after, on the same thread,
 * into the object's error text (ats_context_error / ats_conn_error).
 */
#ifndef C_TLS_SHIM_H
#define C_TLS_SHIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Results of ats_conn_handshake / read / write / shutdown. */
enum {
    ATS_OK = 0,
    ATS_WANT_READ = 1,    /* retry the same call once the socket is readable */
    ATS_WANT_WRITE = 2,   /* retry the same call once the socket is writable */
    ATS_CLOSED = 3,       /* the peer sent close_notify (SSL_ERROR_ZERO_RETURN) */
    ATS_SYSCALL = 4,      /* the socket failed: ats_conn_errno; 0 means end of stream */
    ATS_FAILED = 5,       /* a TLS failure: ats_conn_error (and ats_conn_verify_error) */
    ATS_TRUNCATED = 6,    /* end of stream without close_notify (SSL_R_UNEXPECTED_EOF_WHILE_READING) */
};

/* Verification modes for ats_context_set_verify. */
enum {
    ATS_VERIFY_NONE = 0,
    ATS_VERIFY_PEER = 1,          /* verify a certificate if the peer sends one (servers: ask for one) */
    ATS_VERIFY_REQUIRE_PEER = 2,  /* and fail when the peer sends none */
};

/* A configured SSL_CTX plus what its callbacks need. Shareable across threads once configured. */
typedef struct ats_context ats_context;
/* One SSL object over one non-blocking socket descriptor, with our own BIO (recv / send MSG_NOSIGNAL). */
typedef struct ats_conn ats_conn;

/* Contexts. NULL on failure (the reason is in `error`, at most `error_length` bytes with the NUL). */
ats_context *ats_context_new(int server, char *error, size_t error_length);
void ats_context_free(ats_context *context);
/* The reason for the last failed ats_context_* call. */
const char *ats_context_error(const ats_context *context);
/* Protocol versions: 0x0303 TLS 1.2, 0x0304 TLS 1.3; 0 for max means the highest supported. */
int ats_context_set_versions(ats_context *context, int min_version, int max_version);
int ats_context_set_verify(ats_context *context, int mode);
/* The system trust store: OpenSSL's default paths, plus Debian's bundle file when it exists. */
int ats_context_load_system_roots(ats_context *context);
int ats_context_load_roots_file(ats_context *context, const char *path);
int ats_context_load_roots_pem(ats_context *context, const uint8_t *bytes, size_t length);
int ats_context_use_chain_file(ats_context *context, const char *path);
int ats_context_use_chain_pem(ats_context *context, const uint8_t *bytes, size_t length);
int ats_context_use_key_file(ats_context *context, const char *path);
int ats_context_use_key_pem(ats_context *context, const uint8_t *bytes, size_t length);
/* Checks that the key matches the certificate. */
int ats_context_check_key(ats_context *context);
/* ALPN protocols in wire format (length-prefixed names). Clients offer them; servers pick the first of
   theirs that the client offers (no overlap: no ALPN, the handshake goes on). */
int ats_context_set_alpn(ats_context *context, const uint8_t *wire, size_t length);
/* EOF without close_notify is a clean end (SSL_OP_IGNORE_UNEXPECTED_EOF). */
void ats_context_set_ignore_unexpected_eof(ats_context *context, int ignore);
/* Servers: use `certificates` (a context with a chain and key) for clients asking for `name` by SNI
   (case-insensitive; "*.example.com" matches one label). Takes a reference on `certificates`. */
int ats_context_add_server_name(ats_context *context, const char *name, ats_context *certificates);

/* Connections. NULL on failure (reason in `error`). The descriptor is not owned: never closed here. */
ats_conn *ats_conn_new(ats_context *context, int fd, char *error, size_t error_length);
void ats_conn_free(ats_conn *conn);
/* Clients: verify the peer for `host` (a DNS name, or an IP address when is_ip) and send it as SNI
   (names only). */
int ats_conn_set_host(ats_conn *conn, const char *host, int is_ip, int verify);
int ats_conn_handshake(ats_conn *conn);
/* On ATS_OK, `*done` bytes were read or written. Writes are retried with the same bytes (the buffer may move). */
int ats_conn_read(ats_conn *conn, void *buffer, size_t length, size_t *done);
int ats_conn_write(ats_conn *conn, const void *buffer, size_t length, size_t *done);
/* Sends close_notify: ATS_OK once sent (whether or not the peer's arrived). */
/* Sends what earlier writes left in the write buffer: ATS_OK when all is sent, ATS_WANT_WRITE (wait for room,
 * call again), ATS_SYSCALL (ats_conn_errno). Every ats_conn_write must be followed by flushing before the
 * caller reports the write done. */
int ats_conn_flush(ats_conn *conn);
int ats_conn_shutdown(ats_conn *conn);
/* Decrypted or undecrypted bytes OpenSSL already holds (SSL_has_pending) / decrypted ones (SSL_pending). */
int ats_conn_has_pending(const ats_conn *conn);
int ats_conn_pending(const ats_conn *conn);
/* Whether the last recv of the connection's BIO took less than it asked for, or found nothing: the socket was
 * drained then, so a read that finds nothing buffered (ats_conn_has_pending) will most likely have to wait. */
int ats_conn_input_drained(const ats_conn *conn);
/* How many recv calls of the connection's BIO found nothing (EAGAIN). */
long ats_conn_empty_receives(const ats_conn *conn);
/* After ATS_SYSCALL: the socket's errno (0: end of stream). */
int ats_conn_errno(const ats_conn *conn);
/* After ATS_FAILED: OpenSSL's reason, e.g. "certificate verify failed". */
const char *ats_conn_error(const ats_conn *conn);
/* After a failed verification: X509_verify_cert_error_string, else NULL. */
const char *ats_conn_verify_error(const ats_conn *conn);
/* Whether the last failure was a certificate verification failure. */
int ats_conn_failed_verification(const ats_conn *conn);
/* Negotiated values, after the handshake. */
const char *ats_conn_version(const ats_conn *conn);
/* The ALPN protocol (not NUL-terminated): its length, 0 when none. */
size_t ats_conn_alpn(const ats_conn *conn, const uint8_t **protocol);
/* The SNI name a server received, or NULL. */
const char *ats_conn_server_name(const ats_conn *conn);
/* The peer's certificate as DER: its length (0 when none); free *der with ats_free. */
size_t ats_conn_peer_certificate_der(const ats_conn *conn, uint8_t **der);
/* The peer certificate's subject (RFC 2253), or NULL; free with ats_free. */
char *ats_conn_peer_subject(const ats_conn *conn);
void ats_free(void *pointer);

/* Live SSL objects and contexts in the process (leak checks). */
long ats_live_connections(void);
long ats_live_contexts(void);
/* Whether `text` is a numeric IPv4 or IPv6 address. */
int ats_is_ip_address(const char *text);

#ifdef __cplusplus
}
#endif

#endif
