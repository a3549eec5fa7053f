# SPDX-License-Identifier: Apache-2.0
"""autoscaler — the host's scaling policy for one guest, shared by the
end-to-end test and the demo: the VM size the agent announces is the base
memory plus what is hot-plugged (virtio-mem, DIMMs); memory is plugged
first, the agent speaks once the guest's MemTotal shows it.
"""
import time

from vmlib import MIB, log


class Autoscaler:
    def __init__(self, vm, agent, base_bytes):
        self.vm, self.agent, self.base = vm, agent, base_bytes
        self.vmem = 0         # virtio-mem requested size
        self.dimms = 0        # bytes of DIMMs added
        self.mem_total0 = vm.mem_total()  # MemTotal with nothing plugged

    @property
    def vm_bytes(self):
        return self.base + self.vmem + self.dimms

    def expected_mem_total(self):
        return self.mem_total0 + self.vmem + self.dimms

    def resize_vmem(self, size, timeout=30):
        """Sets virtio-mem to size and waits until MemTotal shows it.
        Returns (MemTotal, seconds)."""
        t = time.monotonic()
        self.vmem = size
        self.vm.virtio_mem_resize(size)
        want = self.expected_mem_total()
        got = self.vm.wait_mem_total(lambda v: v == want, timeout)
        return got, time.monotonic() - t

    def add_dimm(self, size, timeout=20):
        """Hot-plugs one DIMM of size; returns (MemTotal, seconds)."""
        t = time.monotonic()
        self.dimms += size
        self.vm.dimm_add(f"dimm{self.dimms // MIB}", size)
        want = self.expected_mem_total()
        got = self.vm.wait_mem_total(lambda v: v == want, timeout)
        return got, time.monotonic() - t

    def answer_try_upscale(self, step, timeout=30, before_upscale=None):
        """Waits for one /try-upscale, grows virtio-mem by step, waits for
        the guest to see it, then sends /upscale with the new VM size.
        Returns (call or None, MemTotal, (status, body) or None)."""
        try:
            call = self.agent.try_upscales.get(timeout=timeout)
        except Exception:  # queue.Empty
            return None, None, None
        mem_total, secs = self.resize_vmem(self.vmem + step)
        log(f"try-upscale: virtio-mem +{step // MIB} MiB visible after {secs:.2f}s")
        if before_upscale is not None:
            before_upscale(call)
        return call, mem_total, self.agent.upscale(self.vm_bytes)

    def downscale_vmem(self, size):
        """Asks the informant to shrink to base + size + DIMMs; if it
        agrees, unplugs virtio-mem down to size.  Returns (status, body)."""
        status, body = self.agent.downscale(self.base + size + self.dimms)
        if status == 200 and isinstance(body, dict) and body.get("Ok") is True:
            self.resize_vmem(size)
        return status, body

    def downscale_vmem_settled(self, size, tries=8):
        """downscale_vmem, asked again each second (as an agent would) while
        the informant refuses it as too tight for usage that is still
        growing — Postgres refaulting what a test dropped settles within
        a few seconds."""
        for _ in range(tries):
            status, body = self.downscale_vmem(size)
            if not (status == 200 and isinstance(body, dict) and
                    "too tight" in str(body.get("Status", ""))):
                break
            time.sleep(1.0)
        return status, body
