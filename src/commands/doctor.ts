import { defineCommand } from '../core/define-command.js';
import { renderDoctor } from '../ui/render/serve.js';

export const doctorCommand = defineCommand({
  name: 'doctor',
  summary: 'show which devices (cpu, cuda, webgpu) load a model here, and how to enable the others',
  examples: ['maas doctor', 'maas doctor --json'],
  async run() {
    const { runDoctor } = await import('../inference/doctor.js');
    return runDoctor();
  },
  render: renderDoctor,
});
