// The package ships no typings; this is the part of its documented output the tests read.
declare module 'parse-prometheus-text-format' {
  interface Sample {
    readonly value: string;
    readonly labels?: Readonly<Record<string, string>>;
  }
  interface MetricFamily {
    readonly name: string;
    readonly help: string;
    readonly type: 'COUNTER' | 'GAUGE' | 'HISTOGRAM' | 'SUMMARY' | 'UNTYPED';
    readonly metrics: readonly Sample[];
  }
  export default function parsePrometheusTextFormat(text: string): MetricFamily[];
}
