/*
 * Linkage test: takes the address of every call declared in the public
 * headers, so the build fails if the shared libraries do not export one.
 * Run, it checks that none of them is NULL.
 */
#include <stdio.h>

#include "libvfio-user.h"
#include "vfio-user-client.h"

typedef void (*fn_t)(void);
#define FN(f) { #f, (fn_t)(f) }

static const struct { const char *name; fn_t fn; } calls[] = {
    FN(vfu_create_ctx), FN(vfu_realize_ctx), FN(vfu_attach_ctx),
    FN(vfu_get_poll_fd), FN(vfu_run_ctx), FN(vfu_destroy_ctx),
    FN(vfu_get_private), FN(vfu_setup_log), FN(vfu_log),
    FN(vfu_setup_region), FN(vfu_create_ioeventfd),
    FN(vfu_setup_device_reset_cb),
    FN(vfu_setup_device_quiesce_cb), FN(vfu_device_quiesced),
    FN(vfu_sgl_read), FN(vfu_sgl_write),
    FN(vfu_pci_init), FN(vfu_pci_set_id), FN(vfu_pci_set_class),
    FN(vfu_pci_get_config_space), FN(vfu_pci_add_capability),
    FN(vfu_pci_find_capability), FN(vfu_pci_find_next_capability),
    FN(dma_sg_size), FN(vfu_setup_device_dma), FN(vfu_addr_to_sgl),
    FN(vfu_sgl_get), FN(vfu_sgl_put), FN(vfu_sgl_mark_dirty),
    FN(vfu_sg_is_mappable),
    FN(vfu_setup_device_nr_irqs), FN(vfu_setup_irq_state_callback),
    FN(vfu_irq_trigger),
    FN(vfu_setup_device_migration_callbacks),
    FN(vfu_setup_device_migration_data_size),
    FN(vfu_client_connect), FN(vfu_client_negotiate), FN(vfu_client_close),
    FN(vfu_client_fd), FN(vfu_client_server_info), FN(vfu_client_device_info),
    FN(vfu_client_region_info), FN(vfu_client_region_read),
    FN(vfu_client_region_write), FN(vfu_client_region_write_multi),
    FN(vfu_client_reset), FN(vfu_client_irq_info), FN(vfu_client_set_irqs),
    FN(vfu_client_wait_irq), FN(vfu_client_send), FN(vfu_client_recv),
    FN(vfu_client_request), FN(vfu_client_get_stats),
    FN(vfu_client_dma_map), FN(vfu_client_dma_unmap), FN(vfu_client_serve),
    FN(vfu_client_dirty_start), FN(vfu_client_dirty_stop),
    FN(vfu_client_dirty_report),
    FN(vfu_client_mig_flags), FN(vfu_client_mig_state_get),
    FN(vfu_client_mig_state_set), FN(vfu_client_mig_read),
    FN(vfu_client_mig_write), FN(vfu_client_mig_data_size),
    FN(vfu_client_migrate),
    FN(vfu_client_region_io_fds), FN(vfu_client_ioeventfds_free),
    FN(vfu_client_ioeventfds_install), FN(vfu_client_ioeventfds_remove),
    FN(vfu_client_doorbell),
};

int
main(void)
{
    int bad = 0;
    for (size_t i = 0; i < sizeof(calls) / sizeof(calls[0]); i++) {
        if (calls[i].fn == NULL) {
            printf("missing: %s\n", calls[i].name);
            bad++;
        }
    }
    printf("%zu calls linked\n", sizeof(calls) / sizeof(calls[0]) - (size_t)bad);
    return bad != 0;
}
