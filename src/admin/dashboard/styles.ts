/** The dashboard's stylesheet, served as /__edge/assets/dashboard.<hash>.css. */
export const DASHBOARD_CSS = `
:root{--bg:#f3f5f8;--panel:#fff;--ink:#101828;--muted:#667085;--line:#e4e7ec;--ok:#15803d;--bad:#d92d20;
--eject:#e8590c;--drain:#d4a00b;--off:#98a2b3;--move:#2563eb;--mig:#7c3aed;--restore:#0e9384;--other:#667085;
font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--ink);background:var(--bg)}
*{box-sizing:border-box}body{margin:0}[hidden]{display:none!important}
h1{font-size:22px;margin:0 0 8px}h2{font-size:15px;margin:0 0 12px;font-weight:650}
code{font:12px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#f2f4f7;padding:1px 4px;border-radius:4px}
.muted{color:var(--muted);font-weight:400}.small{font-size:12px}
.top{display:flex;align-items:center;gap:16px;padding:10px 24px;background:#101828;color:#fff}
.top .brand{display:flex;gap:10px;align-items:baseline;font-size:16px}.top .muted{color:#98a2b3;font-size:13px}
.live{margin-left:auto;display:flex;align-items:center;gap:8px;font-size:13px;color:#d0d5dd}
.live .dot{width:9px;height:9px;border-radius:50%;background:var(--off)}
.live[data-state=ok] .dot{background:#32d583}.live[data-state=stale] .dot{background:var(--bad)}
button{font:inherit;font-weight:600;border:1px solid #101828;background:#101828;color:#fff;border-radius:6px;padding:6px 12px;cursor:pointer}
button:disabled{opacity:.5;cursor:default}button.ghost{background:transparent;border-color:#475467;color:#fff}
button.warn{background:#fff;color:#93370d;border-color:#fdb022}button.warn:hover{background:#fffaeb}
button.undo{background:#fff;color:var(--ink);border-color:#d0d5dd}
input{font:inherit;border:1px solid #d0d5dd;border-radius:6px;padding:5px 8px}
.problem{margin:12px 24px 0;padding:10px 14px;border-radius:8px;background:#fef3f2;color:#b42318;border:1px solid #fecdca}
main{padding:16px 24px 32px;display:grid;gap:16px;max-width:1440px;margin:0 auto}
.panel{background:var(--panel);border:1px solid var(--line);border-radius:10px;padding:16px}
.row{display:grid;grid-template-columns:3fr 2fr;gap:16px}.row>.panel{min-width:0}
.kpis{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:12px}
.kpi{background:var(--panel);border:1px solid var(--line);border-radius:10px;padding:12px 16px}
.kpi b{display:block;font-size:28px;line-height:1.1;font-variant-numeric:tabular-nums}.kpi span{color:var(--muted);font-size:13px}
.kpi.bad b{color:var(--bad)}.kpi.warn b{color:#b54708}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(270px,1fr));gap:12px}
.card{border:1px solid var(--line);border-left:6px solid var(--ok);border-radius:8px;padding:12px 14px;display:grid;gap:8px}
.card[data-state=down]{border-left-color:var(--bad)}.card[data-state=ejected]{border-left-color:var(--eject)}
.card[data-state=draining]{border-left-color:var(--drain)}.card[data-state=drained]{border-left-color:var(--off)}
.card .head{display:flex;align-items:center;gap:8px;flex-wrap:wrap}.card .id{font-size:17px;font-weight:700;margin-right:auto;overflow-wrap:anywhere}
.card .url{color:var(--muted);font-size:12px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.card .count{font-size:26px;font-weight:700;font-variant-numeric:tabular-nums}.card .count small{font-size:13px;font-weight:400;color:var(--muted)}
.card .note{font-size:12px;color:var(--muted);min-height:16px}
.card form{display:flex;gap:8px;align-items:center;font-size:13px}.card form input{width:76px}
.pill{display:inline-block;font-size:12px;font-weight:650;padding:2px 8px;border-radius:999px;background:#ecfdf3;color:#067647}
.pill.down{background:#fef3f2;color:#b42318}.pill.ejected{background:#fff4ed;color:#b93815}
.pill.draining{background:#fffaeb;color:#93370d}.pill.drained{background:#f2f4f7;color:#344054}.pill.idle{background:#f2f4f7;color:#475467}
.confirm{display:grid;gap:8px;padding:10px;border:1px solid #fdb022;background:#fffaeb;border-radius:8px;font-size:13px}
.confirm p{margin:0}.confirm .actions{display:flex;gap:8px}
.probe-errors{list-style:none;margin:0;padding:0;font-size:12px;color:#b42318;display:grid;gap:2px}
.probe-errors time{color:var(--muted);margin-right:4px}.probe-errors .muted{color:var(--muted)}
.evacuate{margin-top:12px;display:grid;gap:8px;font-size:13px}.evacuate select{font:inherit;padding:4px 6px;border-radius:6px}
.note{font-size:12px;color:var(--muted);margin:8px 0 0}
.progress{height:8px;background:#f2f4f7;border-radius:4px;overflow:hidden}.progress i{display:block;height:100%;background:var(--drain)}
.chart svg{display:block;width:100%;height:auto;overflow:visible}.chart text{font-size:12px;fill:var(--ink)}
.chart .label{font-size:13px;font-weight:600}.chart .value{font-weight:700;font-size:13px}.chart .axis{fill:var(--muted);font-size:11px}
.chart .grid{stroke:var(--line)}.chart .lane{fill:#f9fafb}.chart .now{stroke:var(--ink);stroke-dasharray:2 3}
.chart .empty{fill:var(--muted);font-size:13px}.chart .count{fill:#fff;font-size:10px;font-weight:700}
.donut{display:flex;gap:20px;align-items:center}.donut svg{width:150px;flex:none}.donut .big{font-size:26px;font-weight:700}
.legend{list-style:none;margin:0;padding:0;display:grid;gap:6px;font-size:13px}
.legend li{display:flex;gap:8px;align-items:center}.legend b{font-variant-numeric:tabular-nums;margin-left:auto;padding-left:12px}
.swatch{width:12px;height:12px;border-radius:3px;flex:none;background:var(--c)}
.keys{display:flex;gap:14px;flex-wrap:wrap;font-size:12px;color:var(--muted);margin-top:6px}
.keys span{display:flex;gap:5px;align-items:center}
.events{list-style:none;margin:12px 0 0;padding:0;display:grid;gap:2px;font-size:13px}
.events li{display:grid;grid-template-columns:72px 14px 170px 110px 1fr;gap:8px;align-items:center;padding:4px 6px;border-radius:6px}
.events li:nth-child(odd){background:#f9fafb}.events time{color:var(--muted);font-variant-numeric:tabular-nums}
.events .ev{font-weight:600}.events .oid{overflow:hidden;text-overflow:ellipsis;white-space:nowrap}.events .detail{color:#344054;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.user-form{display:flex;gap:8px}.user-form input{width:min(320px,100%)}
.user-sessions li{grid-template-columns:110px 90px 1fr 1fr}
.signin{display:grid;place-items:center;min-height:100vh;padding:16px}.signin .panel{width:min(420px,100%);display:grid;gap:10px}
.signin p{margin:0}.signin .problem{margin:0}.signin button{justify-self:start;padding:8px 18px}
@media (max-width:600px){.top{padding:10px 12px}#meta{display:none}main{padding:12px}}
@media (max-width:900px){.row{grid-template-columns:1fr}.events li{grid-template-columns:64px 14px 1fr}.events li .oid,.events li .detail{grid-column:3}}
`;
