function write_cases(out, cases, names, parts)
  % Writes each case {name, img1, img2, fused} of a generator as <name>_<parts{1}>.pnm,
  % <name>_<parts{2}>.pnm and <name>_fused.pnm, and the value of every metrics<names{k}>.m
  % (img1, img2, fused) on it to out/values.csv: `case,metric,value`, or `error` where the
  % MATLAB code fails (the message goes to stderr).
  fid = fopen(fullfile(out, 'values.csv'), 'w');
  fprintf(fid, 'case,metric,value\n');
  for i = 1:numel(cases)
    c = cases{i}; name = c{1};
    write_pnm(fullfile(out, [name '_' parts{1} '.pnm']), c{2});
    write_pnm(fullfile(out, [name '_' parts{2} '.pnm']), c{3});
    write_pnm(fullfile(out, [name '_fused.pnm']), c{4});
    for k = 1:numel(names)
      try
        r = feval(['metrics' names{k}], c{2}, c{3}, c{4});
        if ~isscalar(r), error('not a scalar'); end
        fprintf(fid, '%s,%s,%.17g\n', name, names{k}, real(r));
      catch err
        fprintf(fid, '%s,%s,error\n', name, names{k});
        fprintf(stderr, '%s %s: %s\n', name, names{k}, err.message);
      end
    end
  end
  fclose(fid);
end
