/* Intentionally empty: see module.modulemap. Swift never imports OpenSSL's headers directly. */
#ifndef C_OPENSSL_H
#define C_OPENSSL_H
#endif
