/*
 * What kind of file a descriptor is, for the checks both libraries make on
 * descriptors that come from a peer or from device code: whether it is an
 * eventfd, and whether two descriptors are the same open file.
 */
#ifndef VFU_FDKIND_H
#define VFU_FDKIND_H

#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/*
 * 1: @fd is an eventfd; 0: it is open but something else; -1: not open.
 * Without /proc the kind cannot be told, and an open fd counts as one.
 */
static inline int
fd_is_eventfd(int fd)
{
    char path[64], target[64];
    ssize_t n;

    if (fd < 0 || fcntl(fd, F_GETFD) < 0) {
        return -1;
    }
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    n = readlink(path, target, sizeof(target) - 1);
    if (n < 0) {
        return 1;
    }
    target[n] = '\0';
    return strcmp(target, "anon_inode:[eventfd]") == 0;
}

/*
 * Whether @a and @b are the same open file (one dup()ed from the other, or
 * passed twice). kcmp(2) tells exactly; where it is not available, two
 * regular files are the same when their inodes are, and anything else
 * (eventfds share one anonymous inode) is taken as different.
 */
static inline bool
fd_same_file(int a, int b)
{
    struct stat sa, sb;
    pid_t pid = getpid();
    long r = syscall(SYS_kcmp, pid, pid, KCMP_FILE, a, b);

    if (r >= 0) {
        return r == 0;
    }
    if (fstat(a, &sa) < 0 || fstat(b, &sb) < 0) {
        return false;
    }
    return S_ISREG(sa.st_mode) && S_ISREG(sb.st_mode) &&
           sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

#endif /* VFU_FDKIND_H */
