/* Intentionally empty: see module.modulemap. Swift never imports libevent's headers directly. */
#ifndef C_LIBEVENT_H
#define C_LIBEVENT_H
#endif
