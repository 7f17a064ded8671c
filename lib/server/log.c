/*
 * Logging: messages go to the function the device registered, filtered by
 * syslog priority; without one they are dropped.
 */
#include <stdarg.h>
#include <stdio.h>

#include "private.h"

VFU_EXPORT int
vfu_setup_log(vfu_ctx_t *ctx, vfu_log_fn_t *log, int level)
{
    if (ctx == NULL || level < LOG_EMERG || level > LOG_DEBUG) {
        errno = EINVAL;
        return -1;
    }
    ctx->log_fn = log;
    ctx->log_level = level;
    return 0;
}

VFU_EXPORT void
vfu_log(vfu_ctx_t *ctx, int level, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    int saved_errno = errno;

    if (ctx == NULL || ctx->log_fn == NULL || level > ctx->log_level) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    ctx->log_fn(ctx, level, buf);
    errno = saved_errno;
}
