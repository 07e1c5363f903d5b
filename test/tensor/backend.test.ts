import { describe, expect, it } from 'vitest';
import { kernel, registerKernel, registeredBackends, setBackend } from '../../src/tensor/backend.js';
import { TensorError } from '../../src/tensor/errors.js';
import '../../src/tensor/kernels.js'; // registers the cpu kernels
import { tensor } from '../../src/tensor/create.js';

describe('kernel registry', () => {
  it('refuses a second registration of a kernel on a backend (the first stays)', () => {
    const first = kernel('copy');
    expect(() => registerKernel('copy', 'cpu', (x) => x)).toThrow(TensorError);
    expect(() => registerKernel('copy', 'cpu', (x) => x)).toThrow("kernel 'copy' is already registered for backend 'cpu'");
    expect(kernel('copy')).toBe(first);
  });

  it('registers a kernel once per backend: a new backend may implement the same name', () => {
    const identity = (x: ReturnType<typeof tensor>) => x;
    registerKernel('copy', 'registry-test', identity);
    expect(registeredBackends()).toContain('registry-test');
    expect(() => registerKernel('copy', 'registry-test', identity)).toThrow(/already registered for backend 'registry-test'/);
    setBackend('registry-test');
    try {
      expect(kernel('copy')).toBe(identity);
    } finally {
      setBackend('cpu');
    }
  });

  it('resolves again after a registration or a switch (lookups are cached, never stale)', () => {
    const cpuCopy = kernel('copy');
    const own = (x: ReturnType<typeof tensor>) => x;
    registerKernel('copy', 'cache-test', own);
    setBackend('cache-test');
    try {
      expect(kernel('copy')).toBe(own);
      const generic = kernel('siluMul'); // not registered here: the generic implementation
      expect(kernel('siluMul')).toBe(generic);
      const ownSiluMul = (h: ReturnType<typeof tensor>) => h;
      registerKernel('siluMul', 'cache-test', ownSiluMul);
      expect(kernel('siluMul')).toBe(ownSiluMul);
      expect(generic).not.toBe(ownSiluMul);
    } finally {
      setBackend('cpu');
    }
    expect(kernel('copy')).toBe(cpuCopy);
  });
});
