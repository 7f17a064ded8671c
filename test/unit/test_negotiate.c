/*
 * Unit tests of VERSION parsing and formatting (lib/common/negotiate.c): what QEMU
 * sends, defaults, and every kind of bad input with its errno.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "negotiate.h"
#include "vfio-user.h"

/* Parses major 0, minor 3 and @json (NUL included unless @no_nul). */
static int
parse(const char *json, bool no_nul, struct vfu_caps *caps)
{
    uint8_t buf[4096];
    struct vfio_user_version *ver = (void *)buf;
    size_t n = json ? strlen(json) + (no_nul ? 0 : 1) : 0;
    uint16_t major, minor;

    ver->major = 0;
    ver->minor = 3;
    if (json != NULL) {
        memcpy(ver->data, json, n);
    }
    return vfu_version_parse(buf, sizeof(*ver) + n, &major, &minor, caps, NULL);
}

static void
test_qemu_caps(void **state)
{
    struct vfu_caps caps;
    (void)state;
    assert_int_equal(parse("{\"capabilities\":{\"max_msg_fds\":16,"
                           "\"max_data_xfer_size\":1048576,\"pgsizes\":4096,"
                           "\"max_dma_maps\":65535,\"write_multiple\":true,"
                           "\"migration\":{\"pgsize\":4096,"
                           "\"max_bitmap_size\":268435456}}}", false, &caps), 0);
    assert_int_equal(caps.max_msg_fds, 16);
    assert_int_equal(caps.max_data_xfer_size, 1048576);
    assert_int_equal(caps.max_dma_maps, 65535);
    assert_int_equal(caps.pgsizes, 4096);
    assert_true(caps.write_multiple);
    assert_true(caps.migration);
    assert_int_equal(caps.mig_pgsize, 4096);
    assert_int_equal(caps.mig_max_bitmap_size, 268435456);
}

static void
test_defaults(void **state)
{
    struct vfu_caps caps;
    (void)state;
    assert_int_equal(parse(NULL, false, &caps), 0);
    assert_int_equal(caps.max_msg_fds, 1);
    assert_int_equal(caps.max_data_xfer_size, 1 << 20);
    assert_int_equal(caps.pgsizes, 4096);
    assert_false(caps.write_multiple);
    assert_int_equal(parse("{}", false, &caps), 0);
    /* Version data must be a NUL-terminated string. */
    assert_int_equal(parse("{\"capabilities\":{}}", true, &caps), -EINVAL);
    /* Unknown members are ignored. */
    assert_int_equal(parse("{\"capabilities\":{\"future\":[1,2]},\"x\":1}",
                           false, &caps), 0);
}

/* Any max_data_xfer_size of at least one byte is taken as it is. */
static void
test_any_xfer_size(void **state)
{
    static const uint64_t sizes[] = { 1, 2, 511, 4096, 134217728,
                                      (1ull << 40) };
    struct vfu_caps caps;
    char json[128];
    (void)state;
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        snprintf(json, sizeof(json),
                 "{\"capabilities\":{\"max_data_xfer_size\":%llu}}",
                 (unsigned long long)sizes[i]);
        assert_int_equal(parse(json, false, &caps), 0);
        assert_int_equal(caps.max_data_xfer_size, sizes[i]);
    }
}

static void
test_bad_input(void **state)
{
    static const char *bad[] = {
        "not json",
        "[1,2]",
        "{\"capabilities\":7}",
        "{\"capabilities\":{\"max_msg_fds\":\"16\"}}",
        "{\"capabilities\":{\"max_msg_fds\":-1}}",
        "{\"capabilities\":{\"max_msg_fds\":100000}}",
        "{\"capabilities\":{\"max_data_xfer_size\":1.5}}",
        "{\"capabilities\":{\"max_data_xfer_size\":0}}",
        "{\"capabilities\":{\"max_dma_maps\":0}}",
        "{\"capabilities\":{\"pgsizes\":4097}}",
        "{\"capabilities\":{\"pgsizes\":0}}",
        "{\"capabilities\":{\"write_multiple\":1}}",
        "{\"capabilities\":{\"migration\":true}}",
        "{\"capabilities\":{\"migration\":{\"pgsize\":3000}}}",
        "{\"capabilities\":{\"twin_socket\":{\"supported\":\"yes\"}}}",
        "{\"capabilities\":{}} trailing",
        "{\"capabilities\":{",
    };
    struct vfu_caps caps;
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int ret = parse(bad[i], false, &caps);
        if (ret != -EINVAL) {
            fail_msg("'%s' gave %d, not -EINVAL", bad[i], ret);
        }
    }
}

static void
test_framing_errors(void **state)
{
    uint8_t buf[80000] = { 0 };
    struct vfio_user_version *ver = (void *)buf;
    struct vfu_caps caps;
    uint16_t major, minor;
    (void)state;

    /* Shorter than major and minor. */
    assert_int_equal(vfu_version_parse(buf, 3, &major, &minor, &caps, NULL),
                     -EINVAL);
    /* Wrong major. */
    ver->major = 1;
    assert_int_equal(vfu_version_parse(buf, 4, &major, &minor, &caps, NULL),
                     -ENOTSUP);
    assert_int_equal(major, 1);
    /* A NUL inside the JSON. */
    ver->major = 0;
    memcpy(ver->data, "{}\0{}", 6);
    assert_int_equal(vfu_version_parse(buf, 4 + 6, &major, &minor, &caps, NULL),
                     -EINVAL);
    /* Too long. */
    memset(ver->data, ' ', VFU_CAPS_MAX_JSON + 10);
    assert_int_equal(vfu_version_parse(buf, 4 + VFU_CAPS_MAX_JSON + 10, &major,
                                       &minor, &caps, NULL), -E2BIG);
}

static void
test_format_round_trip(void **state)
{
    struct vfu_caps ours, back;
    uint8_t buf[1024];
    struct vfio_user_version *ver = (void *)buf;
    uint16_t major, minor;
    size_t len;
    char *json;
    (void)state;

    vfu_caps_defaults(&ours);
    ours.max_msg_fds = 16;
    ours.write_multiple = true;
    json = vfu_caps_format(&ours, &len);
    assert_non_null(json);
    assert_int_equal(json[len - 1], '\0');
    ver->major = 0;
    ver->minor = 0;
    memcpy(ver->data, json, len);
    free(json);
    assert_int_equal(vfu_version_parse(buf, 4 + len, &major, &minor, &back,
                                       NULL), 0);
    assert_int_equal(back.max_msg_fds, 16);
    assert_true(back.write_multiple);
    assert_int_equal(back.max_data_xfer_size, ours.max_data_xfer_size);
    assert_false(back.migration);
}

/*
 * What we parsed from a peer formats back into what parses the same: a
 * migration object without max_bitmap_size included (found by
 * fuzz-version: regressions/version/mig-without-bitmap-size).
 */
static void
test_format_what_was_parsed(void **state)
{
    const char *json = "{\"capabilities\":{\"migration\":{\"pgsize\":8192}}}";
    uint8_t buf[1024];
    struct vfio_user_version *ver = (void *)buf;
    struct vfu_caps caps, back;
    uint16_t major, minor;
    size_t len;
    char *out;
    (void)state;

    ver->major = ver->minor = 0;
    memcpy(ver->data, json, strlen(json) + 1);
    assert_int_equal(vfu_version_parse(buf, 4 + strlen(json) + 1, &major,
                                       &minor, &caps, NULL), 0);
    assert_true(caps.migration);
    assert_int_equal(caps.mig_max_bitmap_size, 0);
    out = vfu_caps_format(&caps, &len);
    assert_non_null(out);
    memcpy(ver->data, out, len);
    free(out);
    assert_int_equal(vfu_version_parse(buf, 4 + len, &major, &minor, &back,
                                       NULL), 0);
    assert_true(back.migration);
    assert_int_equal(back.mig_pgsize, 8192);
    assert_int_equal(back.mig_max_bitmap_size, 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_qemu_caps),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_any_xfer_size),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_framing_errors),
        cmocka_unit_test(test_format_round_trip),
        cmocka_unit_test(test_format_what_was_parsed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
