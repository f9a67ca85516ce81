/*
 * Preloaded before libfaketime in the any-date suite's clusters.
 *
 * libfaketime 0.9.10 wraps select/poll/epoll_wait and, while the real call runs, sets a
 * thread-local "do not fake" flag. The PostgreSQL 15 postmaster sleeps in select() and forks
 * most of its children (walwriter, launchers, every background worker) from signal handlers
 * that run during that sleep, so those children inherit the flag and run on the real clock
 * for good. These definitions take the wait calls away from libfaketime: the fake clock only
 * shifts the time of day by a fixed offset, so a wait needs no faking, and every process the
 * postmaster forks reads the same fake clock.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/select.h>

static void *libc_symbol(const char *name)
{
    static void *libc;
    if (!libc)
        libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
    return libc ? dlsym(libc, name) : NULL;
}

/* real_fn: libc's own definition of the function it is used in */
#define REAL(fn) \
    static __typeof__(&fn) real_fn; \
    if (!real_fn) real_fn = (__typeof__(&fn)) libc_symbol(#fn)

int select(int n, fd_set *r, fd_set *w, fd_set *e, struct timeval *t)
{
    REAL(select);
    return real_fn(n, r, w, e, t);
}

int pselect(int n, fd_set *r, fd_set *w, fd_set *e, const struct timespec *t, const sigset_t *m)
{
    REAL(pselect);
    return real_fn(n, r, w, e, t, m);
}

int poll(struct pollfd *fds, nfds_t n, int timeout)
{
    REAL(poll);
    return real_fn(fds, n, timeout);
}

int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *t, const sigset_t *m)
{
    REAL(ppoll);
    return real_fn(fds, n, t, m);
}

int epoll_wait(int fd, struct epoll_event *ev, int max, int timeout)
{
    REAL(epoll_wait);
    return real_fn(fd, ev, max, timeout);
}

int epoll_pwait(int fd, struct epoll_event *ev, int max, int timeout, const sigset_t *m)
{
    REAL(epoll_pwait);
    return real_fn(fd, ev, max, timeout, m);
}
