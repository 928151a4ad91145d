/*
 * boot.S — from the boot loader to C: a multiboot (v1) header, so that QEMU's
 * -kernel (or GRUB) loads us in 32-bit protected mode; page tables that map the
 * first 4 GiB one to one with 2 MiB pages; long mode; SSE on; then kmain(mbi).
 */
#define MB_MAGIC 0x1BADB002
#define MB_FLAGS 0x00000002 /* bit 1: the boot loader's memory map */

.section .multiboot, "a"
.align 4
.long MB_MAGIC
.long MB_FLAGS
.long -(MB_MAGIC + MB_FLAGS)

.section .bss
.align 4096
pml4: .skip 4096
pdpt: .skip 4096
pds:  .skip 4096 * 4
stack: .skip 65536
stack_top:

.section .data
.align 16
gdt:
.quad 0                      /* null */
.quad 0x00AF9A000000FFFF     /* 0x08: 64-bit code */
.quad 0x00CF92000000FFFF     /* 0x10: data */
gdt_end:
gdtr:
.word gdt_end - gdt - 1
.quad gdt

.section .text
.code32
.global _start
_start:
    cli
    mov $stack_top, %esp
    mov %ebx, %edi               /* the multiboot info, kmain's argument */

    /* PML4[0] -> PDPT; PDPT[0..3] -> 4 page directories; each PD: 512 x 2 MiB */
    mov $pdpt, %eax
    or $3, %eax
    mov %eax, pml4
    mov $pds, %eax
    or $3, %eax
    mov $pdpt, %ebx
    mov $4, %ecx
1:  mov %eax, (%ebx)
    add $4096, %eax
    add $8, %ebx
    loop 1b
    mov $pds, %ebx
    xor %eax, %eax               /* physical address, low 32 bits */
    xor %edx, %edx               /* high 32 bits of the entry */
    mov $2048, %ecx
2:  mov %eax, %esi
    or $0x83, %esi               /* present, writable, 2 MiB page */
    mov %esi, (%ebx)
    movl $0, 4(%ebx)
    add $0x200000, %eax
    add $8, %ebx
    loop 2b

    mov $pml4, %eax
    mov %eax, %cr3
    mov %cr4, %eax
    or $(1 << 5), %eax           /* PAE */
    or $(3 << 9), %eax           /* OSFXSR, OSXMMEXCPT: SSE for the C code */
    mov %eax, %cr4
    mov $0xC0000080, %ecx        /* EFER */
    rdmsr
    or $(1 << 8), %eax           /* LME */
    wrmsr
    mov %cr0, %eax
    and $~((1 << 30) | (1 << 29)), %eax  /* caches on (CD, NW clear): a CPU can start with them off */
    and $~(1 << 2), %eax         /* no x87 emulation */
    or $((1 << 31) | (1 << 1)), %eax  /* paging, monitor coprocessor */
    mov %eax, %cr0
    lgdt gdtr
    ljmp $0x08, $long_mode

.code64
long_mode:
    mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov %ax, %fs
    mov %ax, %gs
    mov $stack_top, %rsp
    and $-16, %rsp
    call kmain
3:  hlt
    jmp 3b

/* The traces, made on the host (scripts/kernel.mjs): see kernel.c's trace blob. */
.section .rodata
.align 16
.global trace_blob, trace_blob_end
trace_blob:
.incbin TRACE_BLOB
trace_blob_end:
.section .note.GNU-stack, "", @progbits
