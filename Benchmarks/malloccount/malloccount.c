/*
 * malloccount.so: counts allocation calls (malloc, calloc, realloc, posix_memalign, aligned_alloc,
 * memalign, valloc) of any process it is preloaded into, for the "allocs" benchmark scenario.
 *
 *   MALLOC_COUNT_FILE=/tmp/counts LD_PRELOAD=.../malloccount.so ./server 0
 *
 * The count is a uint64 in a shared file mapping, so another process (the load generator) reads it at
 * the start and end of its measured window: allocations per round trip, whatever language or allocator
 * layer the server uses on top of malloc. It forwards to glibc's __libc_* entry points (no dlsym, so no
 * bootstrap problem). Build: cc -O2 -shared -fPIC -o malloccount.so malloccount.c
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>
#include <errno.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

static uint64_t early_count;               /* before the constructor mapped the file */
static uint64_t *volatile counter = &early_count;

__attribute__((constructor)) static void malloccount_init(void) {
    const char *path = getenv("MALLOC_COUNT_FILE");
    if (!path || !*path) return;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return;
    if (ftruncate(fd, sizeof(uint64_t)) == 0) {
        void *p = mmap(NULL, sizeof(uint64_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p != MAP_FAILED) {
            __atomic_store_n((uint64_t *)p, __atomic_load_n(&early_count, __ATOMIC_RELAXED), __ATOMIC_RELAXED);
            counter = p;
        }
    }
    close(fd);
}

#define COUNT() __atomic_fetch_add(counter, 1, __ATOMIC_RELAXED)

void *malloc(size_t n) { COUNT(); return __libc_malloc(n); }
void *calloc(size_t a, size_t b) { COUNT(); return __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { COUNT(); return __libc_realloc(p, n); }
void *memalign(size_t align, size_t n) { COUNT(); return __libc_memalign(align, n); }
void *aligned_alloc(size_t align, size_t n) { COUNT(); return __libc_memalign(align, n); }
void *valloc(size_t n) { COUNT(); return __libc_memalign((size_t)sysconf(_SC_PAGESIZE), n); }
int posix_memalign(void **out, size_t align, size_t n) {
    COUNT();
    if (align < sizeof(void *) || (align & (align - 1)) != 0) return EINVAL;
    void *p = __libc_memalign(align, n);
    if (!p && n) return ENOMEM;
    *out = p;
    return 0;
}
