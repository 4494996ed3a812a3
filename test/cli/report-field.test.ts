import t from 'tap';
import { reportField } from '../../src/cli/report-field.js';

t.test('picks a field by path, with or without braces', async (t) => {
  const r = { Router: { Name: 'aa', Peers: [1, 2] }, IPAM: { Range: '10.32.0.0/12' } };
  t.equal(reportField(r, '.IPAM.Range'), '10.32.0.0/12');
  t.equal(reportField(r, '{{.Router.Name}}'), 'aa');
  t.equal(reportField(r, '.Router.Peers'), '[1,2]');
  t.throws(() => reportField(r, '.Router.Nope'), /no field .Router.Nope/);
  t.throws(() => reportField(r, '{{json .}}'), /unsupported format/);
});
