/*
 * VERSION negotiation (see negotiate.h). json-c does the JSON; this file
 * decides which members are valid, with which types and ranges.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "negotiate.h"
#include "vfio-user.h"

void
vfu_caps_defaults(struct vfu_caps *caps)
{
    memset(caps, 0, sizeof(*caps));
    caps->max_msg_fds = VFIO_USER_DEFAULT_MAX_MSG_FDS;
    caps->max_data_xfer_size = VFIO_USER_DEFAULT_MAX_DATA_XFER_SIZE;
    caps->max_dma_maps = VFIO_USER_DEFAULT_MAX_DMA_MAPS;
    caps->pgsizes = VFIO_USER_DEFAULT_PGSIZES;
    caps->twin_socket_fd_index = -1;
}

/* Reads integer member @key into *out if present; -EINVAL if not in range. */
static int
get_uint(struct json_object *obj, const char *key, uint64_t min, uint64_t max,
         uint64_t *out)
{
    struct json_object *v;
    int64_t n;

    if (!json_object_object_get_ex(obj, key, &v)) {
        return 0;
    }
    if (!json_object_is_type(v, json_type_int)) {
        return -EINVAL;
    }
    errno = 0;
    n = json_object_get_int64(v);
    if (n < 0 || (uint64_t)n < min || (uint64_t)n > max) {
        return -EINVAL;
    }
    *out = (uint64_t)n;
    return 0;
}

static int
get_bool(struct json_object *obj, const char *key, bool *out)
{
    struct json_object *v;

    if (!json_object_object_get_ex(obj, key, &v)) {
        return 0;
    }
    if (!json_object_is_type(v, json_type_boolean)) {
        return -EINVAL;
    }
    *out = json_object_get_boolean(v);
    return 0;
}

/* Optional object member: -EINVAL if present but not an object. */
static int
get_object(struct json_object *obj, const char *key, struct json_object **out)
{
    *out = NULL;
    if (!json_object_object_get_ex(obj, key, out)) {
        return 0;
    }
    return json_object_is_type(*out, json_type_object) ? 0 : -EINVAL;
}

static bool
is_pow2(uint64_t v)
{
    return v != 0 && (v & (v - 1)) == 0;
}

static int
parse_caps(struct json_object *caps_obj, struct vfu_caps *caps,
           const char **why)
{
    struct json_object *mig, *twin;
    uint64_t v;

    v = caps->max_msg_fds;
    if (get_uint(caps_obj, "max_msg_fds", 0, VFU_CAPS_MAX_MSG_FDS, &v) < 0) {
        *why = "max_msg_fds is not an integer in range";
        return -EINVAL;
    }
    caps->max_msg_fds = (uint32_t)v;
    /* Any size is honoured: our transfers are split at the smaller one. */
    if (get_uint(caps_obj, "max_data_xfer_size", 1, INT64_MAX,
                 &caps->max_data_xfer_size) < 0) {
        *why = "max_data_xfer_size is not a positive integer";
        return -EINVAL;
    }
    if (get_uint(caps_obj, "max_dma_maps", 1, VFU_CAPS_MAX_DMA_MAPS,
                 &caps->max_dma_maps) < 0) {
        *why = "max_dma_maps is not an integer in range";
        return -EINVAL;
    }
    if (get_uint(caps_obj, "pgsizes", 1, UINT64_MAX >> 1, &caps->pgsizes) < 0 ||
        caps->pgsizes % 4096 != 0) {
        *why = "pgsizes is not a non-zero multiple of 4096";
        return -EINVAL;
    }
    if (get_bool(caps_obj, "write_multiple", &caps->write_multiple) < 0) {
        *why = "write_multiple is not a boolean";
        return -EINVAL;
    }

    if (get_object(caps_obj, "migration", &mig) < 0) {
        *why = "migration is not an object";
        return -EINVAL;
    }
    if (mig != NULL) {
        caps->migration = true;
        caps->mig_pgsize = 4096;
        if (get_uint(mig, "pgsize", 4096, 1ull << 30, &caps->mig_pgsize) < 0 ||
            !is_pow2(caps->mig_pgsize)) {
            *why = "migration.pgsize is not a power of two >= 4096";
            return -EINVAL;
        }
        if (get_uint(mig, "max_bitmap_size", 1, UINT64_MAX >> 1,
                     &caps->mig_max_bitmap_size) < 0) {
            *why = "migration.max_bitmap_size is not a positive integer";
            return -EINVAL;
        }
    }

    if (get_object(caps_obj, "twin_socket", &twin) < 0) {
        *why = "twin_socket is not an object";
        return -EINVAL;
    }
    if (twin != NULL) {
        if (get_bool(twin, "supported", &caps->twin_socket) < 0) {
            *why = "twin_socket.supported is not a boolean";
            return -EINVAL;
        }
        v = 0;
        if (json_object_object_get_ex(twin, "fd_index", NULL)) {
            if (get_uint(twin, "fd_index", 0, VFU_CAPS_MAX_MSG_FDS, &v) < 0) {
                *why = "twin_socket.fd_index is not an integer in range";
                return -EINVAL;
            }
            caps->twin_socket_fd_index = (int)v;
        }
    }
    return 0;
}

static int
parse_json(const char *text, size_t len, struct vfu_caps *caps,
           const char **why)
{
    struct json_tokener *tok;
    struct json_object *root, *caps_obj;
    size_t used;
    int ret = 0;

    tok = json_tokener_new();
    if (tok == NULL) {
        return -ENOMEM;
    }
    root = json_tokener_parse_ex(tok, text, (int)len);
    used = (size_t)json_tokener_get_parse_end(tok);
    if (root == NULL || json_tokener_get_error(tok) != json_tokener_success) {
        *why = "version data is not valid JSON";
        ret = -EINVAL;
        goto out;
    }
    for (; used < len; used++) {
        if (strchr(" \t\r\n", text[used]) == NULL) {
            *why = "trailing bytes after the JSON object";
            ret = -EINVAL;
            goto out;
        }
    }
    if (!json_object_is_type(root, json_type_object)) {
        *why = "version data is not a JSON object";
        ret = -EINVAL;
        goto out;
    }
    if (get_object(root, "capabilities", &caps_obj) < 0) {
        *why = "capabilities is not an object";
        ret = -EINVAL;
        goto out;
    }
    if (caps_obj != NULL) {
        ret = parse_caps(caps_obj, caps, why);
    }
out:
    json_object_put(root);
    json_tokener_free(tok);
    return ret;
}

int
vfu_version_parse(const void *payload, size_t len, uint16_t *major,
                  uint16_t *minor, struct vfu_caps *caps, const char **why)
{
    const struct vfio_user_version *ver = payload;
    const char *text;
    size_t n;
    const char *dummy;

    if (why == NULL) {
        why = &dummy;
    }
    *why = NULL;
    vfu_caps_defaults(caps);
    if (len < sizeof(*ver)) {
        *why = "VERSION payload shorter than major and minor";
        return -EINVAL;
    }
    *major = ver->major;
    *minor = ver->minor;
    if (ver->major != VFIO_USER_MAJOR_VER) {
        *why = "unsupported major version";
        return -ENOTSUP;
    }

    text = (const char *)ver->data;
    n = len - sizeof(*ver);
    if (n == 0) {
        return 0;
    }
    if (n > VFU_CAPS_MAX_JSON) {
        *why = "version data too long";
        return -E2BIG;
    }
    /* The spec's version data is a NUL-terminated JSON string. */
    if (text[n - 1] != '\0') {
        *why = "version data is not NUL-terminated";
        return -EINVAL;
    }
    n--;
    if (memchr(text, '\0', n) != NULL) {
        *why = "NUL inside version data";
        return -EINVAL;
    }
    if (n == 0) {
        return 0;
    }
    return parse_json(text, n, caps, why);
}

char *
vfu_caps_format(const struct vfu_caps *caps, size_t *len)
{
    struct json_object *root = json_object_new_object();
    struct json_object *c = json_object_new_object();
    char *out = NULL;

    if (root == NULL || c == NULL) {
        json_object_put(root);
        json_object_put(c);
        return NULL;
    }
    json_object_object_add(c, "max_msg_fds",
                           json_object_new_int64(caps->max_msg_fds));
    json_object_object_add(c, "max_data_xfer_size",
                           json_object_new_int64((int64_t)caps->max_data_xfer_size));
    json_object_object_add(c, "max_dma_maps",
                           json_object_new_int64((int64_t)caps->max_dma_maps));
    json_object_object_add(c, "pgsizes",
                           json_object_new_int64((int64_t)caps->pgsizes));
    json_object_object_add(c, "write_multiple",
                           json_object_new_boolean(caps->write_multiple));
    if (caps->migration) {
        struct json_object *m = json_object_new_object();
        json_object_object_add(m, "pgsize",
                               json_object_new_int64((int64_t)caps->mig_pgsize));
        /* 0: not announced (a peer may leave it out); 0 is not valid. */
        if (caps->mig_max_bitmap_size != 0) {
            json_object_object_add(m, "max_bitmap_size",
                                   json_object_new_int64((int64_t)caps->mig_max_bitmap_size));
        }
        json_object_object_add(c, "migration", m);
    }
    if (caps->twin_socket) {
        struct json_object *t = json_object_new_object();
        json_object_object_add(t, "supported", json_object_new_boolean(true));
        if (caps->twin_socket_fd_index >= 0) {
            json_object_object_add(t, "fd_index",
                                   json_object_new_int(caps->twin_socket_fd_index));
        }
        json_object_object_add(c, "twin_socket", t);
    }
    json_object_object_add(root, "capabilities", c);

    const char *s = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN);
    if (s != NULL) {
        *len = strlen(s) + 1;
        out = strdup(s);
    }
    json_object_put(root);
    return out;
}
