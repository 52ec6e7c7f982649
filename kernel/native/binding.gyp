{
  # Generic x86-64 build: no -march/-m flag enables AVX for the whole addon. Each path file enables its own ISA
  # with a target pragma, and addon.c runs a path only after cpu.c has checked the CPU and the OS at run time,
  # so a build made on one machine loads (and reports which paths it can run) on any other x86-64 machine.
  'targets': [
    {
      'target_name': 'hpair_native',
      'sources': [
        'src/addon.c',
        'src/advise.c',
        'src/cpu.c',
        'src/scan.c',
        'src/scratch.c',
        'src/path_avx2.c',
        'src/path_avx512.c',
        'src/path_portable.c',
      ],
      # Node-API version 8 only: the binary is ABI-stable, so one prebuilt file serves every Node version from 20 on.
      'defines': ['NAPI_VERSION=8'],
      'cflags': ['-O3', '-ffp-contract=off', '-fno-math-errno', '-fvisibility=hidden', '-std=gnu11', '-Wall', '-Wextra', '-Wno-unused-parameter'],
      'cflags!': ['-O2'],
      'xcode_settings': {
        'GCC_OPTIMIZATION_LEVEL': '3',
        'GCC_C_LANGUAGE_STANDARD': 'gnu11',
        'OTHER_CFLAGS': ['-ffp-contract=off', '-fno-math-errno', '-fvisibility=hidden'],
      },
    },
  ],
}
