// CLI entry point (placeholder until the command modules land): see src/cli/commands/.
export function main(argv: string[]): void {
  void argv;
  process.stdout.write('grl-onnx\n');
}
