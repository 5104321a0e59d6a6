/* geometry.c - the cylinders/heads/sectors VMware writes into
 * ddb.geometry.*, by adapter type (rules observed in VMware-made files). */
#include "descriptor.h"

#define IDE_MAX_CYLINDERS 16383u
#define SCSI_SMALL_LIMIT_SECTORS 2097152u /* 1 GiB */

void vk_geometry_for(const char *adapter, uint64_t capacity_sectors, uint64_t *cylinders,
                     uint32_t *heads, uint32_t *sectors)
{
    if (!vk_adapter_is_scsi(adapter)) {
        /* ide (and anything unknown): 16/63, cylinders capped */
        *heads = 16;
        *sectors = 63;
        *cylinders = vk_min(capacity_sectors / (16 * 63), IDE_MAX_CYLINDERS);
    } else if (capacity_sectors < SCSI_SMALL_LIMIT_SECTORS) {
        *heads = 64;
        *sectors = 32;
        *cylinders = capacity_sectors / (64 * 32);
    } else {
        /* no cylinder cap for SCSI: VMware writes e.g. 221922 */
        *heads = 255;
        *sectors = 63;
        *cylinders = capacity_sectors / (255 * 63);
    }
}
