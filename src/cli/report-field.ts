// `weave report -f .Router.Name`: picks one field of the report. Weave took a Go template; the
// common use is a single path, which is what this accepts (with or without the {{ }}).

export function reportField(report: unknown, expression: string): string {
  const path = expression.trim().replace(/^\{\{\s*/, '').replace(/\s*\}\}$/, '');
  if (!/^(\.[A-Za-z_][A-Za-z0-9_]*)+$|^\.$/.test(path)) {
    throw new RangeError(`unsupported format "${expression}": want a field path such as .Router.Name`);
  }
  let value: unknown = report;
  for (const key of path.split('.').filter((k) => k !== '')) {
    if (value === null || typeof value !== 'object' || !(key in value)) {
      throw new RangeError(`the report has no field ${path}`);
    }
    value = (value as Record<string, unknown>)[key];
  }
  return typeof value === 'string' ? value : JSON.stringify(value);
}
