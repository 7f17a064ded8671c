/*
 * mmio: the test guest's tool for memory BARs and physical memory, which
 * busybox reaches only one access at a time (devmem). Maps FILE (a sysfs
 * resource file of a PCI device, or /dev/mem) at OFFSET and copies between
 * it and stdin/stdout with 32-bit accesses, in order.
 *
 *   mmio write FILE OFFSET < DATA     DATA's bytes (a multiple of 4)
 *   mmio read FILE OFFSET LENGTH > DATA
 *
 * Built static: it runs in the guest's initramfs, which has no libc.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static int
usage(void)
{
    fprintf(stderr, "usage: mmio write FILE OFFSET < DATA\n"
                    "       mmio read FILE OFFSET LENGTH > DATA\n");
    return 2;
}

int
main(int argc, char *argv[])
{
    static uint32_t buf[1 << 18];       /* 1 MiB */
    volatile uint32_t *p;
    size_t off, len = 0, base, span;
    long pgsize = sysconf(_SC_PAGESIZE);
    bool is_write;
    void *map;
    int fd;

    if (argc < 4) {
        return usage();
    }
    is_write = strcmp(argv[1], "write") == 0;
    if (!is_write && (strcmp(argv[1], "read") != 0 || argc != 5)) {
        return usage();
    }
    fd = open(argv[2], O_RDWR | O_SYNC);
    if (fd < 0) {
        perror(argv[2]);
        return 1;
    }
    off = strtoul(argv[3], NULL, 0);
    if (is_write) {
        ssize_t n;

        while (len < sizeof(buf) &&
               (n = read(STDIN_FILENO, (char *)buf + len, sizeof(buf) - len)) > 0) {
            len += (size_t)n;
        }
    } else {
        len = strtoul(argv[4], NULL, 0);
    }
    if (off % 4 != 0 || len % 4 != 0 || len == 0 || len > sizeof(buf)) {
        fprintf(stderr, "mmio: bad offset %#zx or length %#zx\n", off, len);
        return 1;
    }
    base = off & ~((size_t)pgsize - 1);
    span = off - base + len;
    map = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)base);
    if (map == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    p = (volatile uint32_t *)((char *)map + (off - base));
    for (size_t i = 0; i < len / 4; i++) {
        if (is_write) {
            p[i] = buf[i];
        } else {
            buf[i] = p[i];
        }
    }
    if (!is_write && write(STDOUT_FILENO, buf, len) != (ssize_t)len) {
        perror("write");
        return 1;
    }
    return 0;
}
